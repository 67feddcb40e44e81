"""The public API's one OpenAPI document: fresh, and every layer follows the same conventions in it."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from strata.errors import BadRequestError
from strata.pagination import PageRequest, page_of
from strata_cli.localcloud.template import load_template
from strata_cli.main import app as cli
from strata_cli.openapi import (
    BEARER,
    DOCUMENT,
    OpenApiError,
    build_document,
    is_public_path,
    load_function_apis,
    merge_schema,
    render,
)
from tests.conftest import ROOT

METHODS = ("get", "put", "post", "delete", "patch")
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# A path segment that is a verb is an action on the resource before it (POST .../rotate), never a CRUD verb.
ACTIONS = {"close", "replay", "revoke", "rotate", "cancel", "pause", "resume", "approve", "reject", "retry", "test"}
CRUD_VERBS = {"get", "list", "create", "update", "delete", "put", "set", "add", "remove", "fetch", "find", "new"}
# Segments that are file names by convention, not resources.
FILE_SEGMENTS = {"openapi.json"}
# Path parameters that are natural keys rather than ids: a configuration entry is addressed by its namespace and
# key, a document's version by its number, and a docs asset by its file name.
NATURAL_KEYS = {"namespace", "key", "version", "name"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(ROOT)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def versioned(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    return ((p, m, op) for p, m, op in operations(document) if p.startswith("/v1/"))


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = document["components"][section][name]
    return node


def public_routes() -> set[tuple[str, str]]:
    return {(r.method.lower(), r.path) for r in load_template(ROOT / "template.yaml").routes if r.public}


def test_the_committed_document_is_fresh(document: dict[str, Any]) -> None:
    committed = (ROOT / DOCUMENT).read_text(encoding="utf-8") if (ROOT / DOCUMENT).is_file() else ""

    assert committed == render(document), f"{DOCUMENT} is stale: run `strata openapi` and commit it"


def test_it_is_one_openapi_3_1_document_with_every_layer(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/", "description": "The host that serves this document"}]
    assert [t["name"][:3] for t in document["tags"]] == [f"L{n:02}" for n in range(1, 12)]
    assert all(is_public_path(path) for path in document["paths"])
    tags = {op["tags"][0] for _, _, op in operations(document)}
    assert tags == {t["name"] for t in document["tags"]}
    # every $ref resolves
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "([^"]+)"', text)):
        *_, section, name = ref.split("/")
        assert name in document["components"][section], ref


def test_every_operation_is_routed_by_the_template_to_the_function_that_serves_it() -> None:
    template = load_template(ROOT / "template.yaml")
    routed = {(r.method.lower(), r.path): r.function for r in template.routes}
    documented: set[tuple[str, str]] = set()
    for api in load_function_apis(ROOT, template):
        for path, method, _ in operations(api.document):
            if is_public_path(path):
                documented.add((method, path))
                assert routed.get((method, path)) == api.logical_id, f"{method.upper()} {path} ({api.logical_id})"
    unserved = {key for key in routed if is_public_path(key[1])} - documented
    assert unserved == set(), "template routes that no function's app serves"


def test_paths_are_kebab_case_nouns(document: dict[str, Any]) -> None:
    for path, method, _ in versioned(document):
        segments = [s for s in path.split("/")[2:] if not s.startswith("{")]
        for index, segment in enumerate(segments):
            if segment in FILE_SEGMENTS:
                continue
            assert KEBAB.match(segment), f"{path}: {segment!r} is not kebab-case"
            assert segment not in CRUD_VERBS, f"{path}: the method says what to do, not the path ({segment!r})"
            if segment in ACTIONS:
                assert index == len(segments) - 1, f"{path}: an action ({segment!r}) ends the path"
                assert path.endswith(segment), f"{path}: an action ({segment!r}) ends the path"
                assert method == "post", f"{path}: an action ({segment!r}) is a POST"


def test_path_parameters_are_snake_case_ids(document: dict[str, Any]) -> None:
    for path, _, operation in versioned(document):
        names = re.findall(r"\{([^}]+)\}", path)
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert set(names) == declared, path
        for name in names:
            assert SNAKE.match(name), f"{path}: {name!r} is not snake_case"
            assert name.endswith("_id") or name in NATURAL_KEYS, f"{path}: {name!r} should be <resource>_id"


def test_query_parameters_and_json_fields_are_snake_case(document: dict[str, Any]) -> None:
    for path, _, operation in versioned(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                assert SNAKE.match(parameter["name"]), f"{path}: query parameter {parameter['name']!r}"

    def fields(node: Any, where: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for name in node.get("properties") or {}:
                yield name, where
            for key, value in node.items():
                if key != "properties":
                    yield from fields(value, where)
                else:
                    for name, child in value.items():
                        yield from fields(child, f"{where}.{name}")
        elif isinstance(node, list):
            for child in node:
                yield from fields(child, where)

    for schema_name, schema in document["components"]["schemas"].items():
        for field, where in fields(schema, schema_name):
            assert SNAKE.match(field), f"{where}: field {field!r} is not snake_case"


def test_every_list_endpoint_pages_with_limit_and_cursor(document: dict[str, Any]) -> None:
    lists = 0
    for path, method, operation in versioned(document):
        if method != "get" or path.endswith("}"):
            continue
        content = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        schema = resolve(document, content["schema"]) if content and "schema" in content else {}
        if "items" not in schema.get("properties", {}):
            continue
        lists += 1
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert {"limit", "cursor"} <= query, f"GET {path} is a list without limit and cursor"
        assert {"items", "next_cursor"} <= set(schema["properties"]), f"GET {path} answers no next_cursor"
    assert lists >= 15  # the test found the lists it is meant to check


def test_protected_operations_need_the_bearer_and_answer_problems(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"][BEARER] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"][BEARER]["description"],
    }
    public = public_routes()
    assert {("get", "/v1/openapi.json"), ("get", "/v1/docs"), ("get", "/v1/docs/assets/{name}")} <= public
    for path, method, operation in operations(document):
        if (method, path) in public:
            assert "security" not in operation, f"{method.upper()} {path} is public in the template"
            continue
        assert path.startswith("/v1/"), f"{method.upper()} {path}: only /v1 routes need a credential"
        assert operation.get("security") == [{BEARER: []}], f"{method.upper()} {path}"
        for status in ("401", "403", "429"):
            assert status in operation["responses"], f"{method.upper()} {path} documents no {status}"


def test_every_error_response_is_problem_json(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"type", "title", "status", "detail", "instance", "request_id"}
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status < "400":
                continue
            content = resolve(document, response)["content"]
            assert list(content) == ["application/problem+json"], f"{method.upper()} {path} {status}"
            schema = content["application/problem+json"]["schema"]["$ref"].rsplit("/", 1)[1]
            assert schema == ("ValidationProblem" if status == "422" else "Problem"), f"{path} {status}"
        if "{" in path:
            assert "404" in operation["responses"], f"{method.upper()} {path}"
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in operation["responses"], f"{method.upper()} {path}"


def test_every_operation_has_a_summary_and_a_unique_snake_case_id(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for path, method, operation in operations(document):
        assert operation.get("summary", "").strip(), f"{method.upper()} {path} has no summary"
        assert SNAKE.match(operation["operationId"]), operation["operationId"]
        assert len(operation["tags"]) == 1


def test_two_different_schemas_with_one_name_fail_the_merge() -> None:
    schemas: dict[str, Any] = {}
    owners: dict[str, str] = {}
    merge_schema(schemas, owners, "Agent", {"type": "object"}, "DataFunction")
    merge_schema(schemas, owners, "Agent", {"type": "object"}, "RuntimeFunction")  # the same one: fine

    with pytest.raises(OpenApiError, match=r"'Agent'.*DataFunction and PlanningFunction"):
        merge_schema(schemas, owners, "Agent", {"type": "string"}, "PlanningFunction")


def test_the_cli_check_fails_on_a_stale_document_and_writing_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a copy of the project whose committed document is stale
    for name in ("shared", "functions"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    (tmp_path / DOCUMENT).write_text("{}\n")
    monkeypatch.setenv("STRATA_ROOT", str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the generator's path entries stay within this test
    runner = CliRunner()

    # WHEN it is checked, THEN it fails; once written, the check passes
    stale = runner.invoke(cli, ["openapi", "--check"])
    assert stale.exit_code == 1, stale.output
    assert "strata openapi" in stale.output
    assert runner.invoke(cli, ["openapi"]).exit_code == 0
    assert runner.invoke(cli, ["openapi", "--check"]).exit_code == 0
    assert json.loads((tmp_path / DOCUMENT).read_text())["openapi"] == "3.1.0"


def test_bounded_lists_page_like_keyset_lists() -> None:
    rows = [{"version": v} for v in range(7, 0, -1)]

    first, cursor = page_of(rows, PageRequest(limit=3))
    second, cursor2 = page_of(rows, PageRequest(limit=3, cursor=cursor))
    last, end = page_of(rows, PageRequest(limit=3, cursor=cursor2))

    assert [r["version"] for r in first + second + last] == [7, 6, 5, 4, 3, 2, 1]
    assert end is None
    assert page_of(rows, PageRequest(limit=7)) == (rows, None)
    for foreign in ("not-a-cursor", "eyJhZnRlciI6ICJ4In0", "WyIyMDI1LTAxLTAxIiwgIngiXQ"):
        with pytest.raises(BadRequestError):
            page_of(rows, PageRequest(cursor=foreign))


async def test_the_docs_routes_serve_the_document_with_etags_and_only_allowed_assets() -> None:
    from strata_api_gateway.app import create_app

    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://l09") as client:
        document = await client.get("/v1/openapi.json")
        assert document.status_code == 200
        assert document.json()["paths"]["/v1/agents"]["get"]["operationId"] == "list_agents"
        etag = document.headers["etag"]
        again = await client.get("/v1/openapi.json", headers={"if-none-match": f'W/"x", {etag}'})
        assert again.status_code == 304
        assert again.content == b""
        assert (await client.get("/v1/openapi.json", headers={"if-none-match": '"other"'})).status_code == 200

        page = await client.get("/v1/docs")
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(sources) == 3
        assert all(s.startswith("/v1/docs/assets/") for s in sources)
        for source in sources:
            asset = await client.get(source, headers={"accept-encoding": "gzip"})
            assert asset.status_code == 200, source
            assert "immutable" in asset.headers["cache-control"]
        bundle = await client.get("/v1/docs/assets/swagger-ui-bundle.js", headers={"accept-encoding": "gzip"})
        assert bundle.headers["content-encoding"] == "gzip"
        assert "SwaggerUIBundle" in bundle.text  # httpx decoded it

        for name in ("README.md", "swagger-ui.LICENSE", "Docs.JS", "nope.js"):
            refused = await client.get(f"/v1/docs/assets/{name}")
            assert refused.status_code == 404, name
            assert refused.headers["content-type"].startswith("application/problem+json")
        escape = await client.get("/v1/docs/assets/..%2F..%2Fopenapi.json")  # never a file outside the list
        assert escape.status_code >= 400
        assert escape.headers["content-type"].startswith("application/problem+json")
