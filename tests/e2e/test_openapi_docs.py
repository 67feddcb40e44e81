"""The public API's OpenAPI document and docs UI through the local cloud: public, cached by ETag, self-hosted."""

from __future__ import annotations

import re

import pytest

from strata.layers import LAYERS
from tests.e2e.conftest import Platform
from tests.e2e.test_platform import EVERY_LAYER_READ, assert_problem

pytestmark = pytest.mark.e2e


async def test_the_openapi_document_is_public_and_revalidates_by_etag(platform: Platform) -> None:
    # GIVEN no credential at all
    answer = await platform.api.get("/v1/openapi.json")

    # THEN the whole public API is described: every layer's read and health routes, in one document
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    document = answer.json()
    assert document["openapi"] == "3.1.0"
    for layer, read in EVERY_LAYER_READ.items():
        assert "get" in document["paths"][read], read
        assert f"/health/{layer}/live" in document["paths"]
    assert {tag["name"][:3] for tag in document["tags"]} == set(LAYERS.values())

    # AND its ETag answers 304 without the body, and another ETag gets the document again
    etag = answer.headers["etag"]
    assert "no-cache" in answer.headers["cache-control"]
    unchanged = await platform.api.get("/v1/openapi.json", headers={"if-none-match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    changed = await platform.api.get("/v1/openapi.json", headers={"if-none-match": '"stale"'})
    assert changed.status_code == 200
    assert changed.json() == document


async def test_the_docs_ui_loads_only_its_own_assets(platform: Platform) -> None:
    page = await platform.api.get("/v1/docs")

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    references = re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"', page.text)
    assert len(references) == 3
    assert all(ref.startswith("/v1/docs/assets/") for ref in references), references
    assert not re.search(r"https?://", page.text)

    # every asset the page names loads, without a credential, cacheable for a long time
    for ref in references:
        asset = await platform.api.get(ref, headers={"accept-encoding": "gzip"})
        assert asset.status_code == 200, ref
        assert "max-age=31536000" in asset.headers["cache-control"]
        assert asset.headers["content-type"].split(";")[0] in ("application/javascript", "text/css")
    bundle = await platform.api.get("/v1/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text


async def test_an_asset_outside_the_allow_list_is_a_404_problem(platform: Platform) -> None:
    for name in ("swagger-ui.LICENSE", "README.md", "index.html", "Docs.JS"):
        assert_problem(await platform.api.get(f"/v1/docs/assets/{name}"), 404)
