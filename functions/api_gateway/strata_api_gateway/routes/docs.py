"""The public API's one OpenAPI document and its docs UI (public: they describe the API, they hold no data)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from strata.errors import NotFoundError
from strata.http_cache import NOT_MODIFIED, content_etag, none_match

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DOCUMENT = PACKAGE_DIR / "openapi.json"  # written by `strata openapi` at build time; functions never import each other
STATIC_DIR = PACKAGE_DIR / "static"
# The only files served as assets: anything else under static/ (licences, notes) is not a route.
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "docs.js": "application/javascript; charset=utf-8",
}
# Asset URLs carry their content hash (?v=), so a browser may keep them for a year.
ASSET_CACHE = "public, max-age=31536000, immutable"
DOCUMENT_CACHE = "public, no-cache"  # always revalidate: a 304 costs nothing, and a deploy shows at once
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter(tags=["docs"])


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    etag: str
    media_type: str

    @property
    def version(self) -> str:
        return self.etag.strip('"')[:12]

    @property
    def gzipped(self) -> bytes:
        return _gzip(self.body)


@cache
def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=9, mtime=0)


def _load(path: Path, media_type: str) -> StaticFile:
    body = path.read_bytes()
    return StaticFile(body, content_etag(body), media_type)


@cache
def openapi_document() -> StaticFile:
    """The committed document, read on first use and kept for the life of the execution environment."""
    return _load(DOCUMENT, "application/json")


@cache
def asset(name: str) -> StaticFile:
    return _load(STATIC_DIR / name, ASSETS[name])


def _serve(request: Request, file: StaticFile, cache_control: str) -> Response:
    headers = {"ETag": file.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if none_match(request, file.etag):
        return Response(status_code=304, headers=headers)
    headers["X-Content-Type-Options"] = "nosniff"
    if "gzip" in request.headers.get("accept-encoding", "") and len(file.body) > 1024:
        return Response(file.gzipped, media_type=file.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(file.body, media_type=file.media_type, headers=headers)


def docs_page() -> str:
    css, bundle, starter = asset("swagger-ui.css"), asset("swagger-ui-bundle.js"), asset("docs.js")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Strata API</title>
<link rel="stylesheet" href="/v1/docs/assets/swagger-ui.css?v={css.version}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/v1/docs/assets/swagger-ui-bundle.js?v={bundle.version}"></script>
<script src="/v1/docs/assets/docs.js?v={starter.version}"></script>
</body>
</html>
"""


_OPENAPI_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "The OpenAPI 3.1 document", "content": {"application/json": {"schema": {"type": "object"}}}},
    **NOT_MODIFIED,
}


@router.get(
    "/v1/openapi.json",
    summary="The OpenAPI document of the whole public API.",
    response_class=Response,
    responses=_OPENAPI_RESPONSES,
)
async def get_openapi_document(request: Request) -> Response:
    """The OpenAPI document of the whole public API (ETag; If-None-Match answers 304)."""
    return _serve(request, openapi_document(), DOCUMENT_CACHE)


@router.get("/v1/docs", summary="The API's docs UI.", response_class=HTMLResponse)
async def get_docs_page() -> HTMLResponse:
    """The API's docs UI (Swagger UI, served by this function)."""
    headers = {
        "Cache-Control": "public, max-age=300",
        "Content-Security-Policy": PAGE_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(docs_page(), headers=headers)


@router.get(
    "/v1/docs/assets/{name}",
    summary="A docs UI asset.",
    response_class=Response,
    responses={200: {"description": "The asset", "content": {"application/javascript": {}, "text/css": {}}}},
)
async def get_docs_asset(request: Request, name: str) -> Response:
    """A docs UI asset (a fixed allow-list; long-lived cache headers)."""
    if name not in ASSETS:  # any other name, whatever its form, is simply not there
        raise NotFoundError(f"no docs asset {name!r}")
    return _serve(request, asset(name), ASSET_CACHE)
