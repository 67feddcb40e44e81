"""template.yaml's routes and the functions' apps agree in both directions (health, console and undocumented routes
included), and the request samples in events/ are requests for those routes, as tests/support/apigw.py builds them."""

from __future__ import annotations

import importlib
import json
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from strata_cli.localcloud.template import Template, load_template
from tests.conftest import ROOT
from tests.support import apigw

EVENTS = ROOT / "events"
GENERATED_KINDS = ("apigw", "sqs", "schedule", "command")  # events/eventbridge is written by hand
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

Route = tuple[str, str]  # (method, path as the template writes it)


@cache
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@cache
def app_of(function: str) -> FastAPI:
    """The function's app, built as its handler builds it (the function folders are on the test path)."""
    import strata.handler  # noqa: F401 - its Logger is the parent the apps' child loggers need

    package = template().functions[function].handler.split(".")[0]
    app: FastAPI = importlib.import_module(f"{package}.app").create_app()
    return app


def canonical(path: str) -> str:
    """A path in the template's words: Starlette's `{name:path}` is API Gateway's greedy `{name+}`, and a typed
    parameter `{name:int}` is `{name}`."""
    path = re.sub(r"\{(\w+):path\}", r"{\1+}", path)
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def greedy_agnostic(route: Route) -> Route:
    """A greedy parameter's name is the function's own business (API Gateway passes the raw path on)."""
    method, path = route
    return method, re.sub(r"\{\w+\+\}", "{+}", path)


def app_routes(function: str) -> set[Route]:
    """Every (method, path) the function's app serves, FastAPI's own routes (docs, OpenAPI) aside."""
    routes: set[Route] = set()
    for route in iter_route_contexts(app_of(function).routes):
        endpoint_module = getattr(route.endpoint, "__module__", "") or ""
        if endpoint_module.startswith("fastapi."):
            continue
        assert route.path is not None, f"{function}: a route without a path ({route.original_route!r})"
        assert route.methods, f"{function}: {route.path} is no HTTP route (API Gateway routes only HTTP methods)"
        methods = set(route.methods)
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette's automatic HEAD of a plain GET route
        routes.update((method, canonical(route.path)) for method in methods)
    return routes


def template_routes() -> dict[str, set[Route]]:
    routes: dict[str, set[Route]] = defaultdict(set)
    for route in template().routes:
        routes[route.function].add((route.method, route.path))
    return routes


FUNCTIONS = sorted(template().functions)


def test_every_function_serves_http_routes_of_the_template() -> None:
    assert set(template_routes()) == set(FUNCTIONS)
    assert len(FUNCTIONS) == 11


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_template_route_is_served_by_its_functions_app(function: str) -> None:
    served = {greedy_agnostic(r) for r in app_routes(function)}
    unserved = sorted(r for r in template_routes()[function] if greedy_agnostic(r) not in served)

    assert unserved == [], f"template routes to {function} that its app does not serve: {unserved}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_route_of_a_functions_app_is_in_the_template_under_that_function(function: str) -> None:
    routed_here = {greedy_agnostic(r) for r in template_routes()[function]}
    elsewhere = {
        greedy_agnostic(r): other for other, routes in template_routes().items() if other != function for r in routes
    }
    missing = sorted(r for r in app_routes(function) if greedy_agnostic(r) not in routed_here)

    assert missing == [], f"routes of {function}'s app that API Gateway never sends it: " + ", ".join(
        f"{m} {p}" + (f" (routed to {elsewhere[(m, p)]})" if (m, p) in elsewhere else "") for m, p in missing
    )


def test_route_keys_are_unique_across_functions() -> None:
    keys = [greedy_agnostic((r.method, r.path)) for r in template().routes]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


# The request samples in events/ (tests/e2e/test_event_samples.py runs each through its function)


def function_of_layer(layer: str) -> str:
    [function] = [name for name, spec in template().functions.items() if spec.code_uri.name == layer]
    return function


def committed(kind: str) -> dict[Path, str]:
    return {
        path.relative_to(EVENTS): path.read_text(encoding="utf-8") for path in sorted((EVENTS / kind).glob("**/*.json"))
    }


def test_the_committed_samples_are_what_the_builder_writes() -> None:
    built = {path: apigw.render(sample) for path, sample in apigw.samples().items()}
    found: dict[Path, str] = {}
    for kind in GENERATED_KINDS:
        found.update(committed(kind))

    hint = "run `.venv/bin/python -m tests.support.apigw` and commit events/"
    assert sorted(set(built) - set(found)) == [], f"samples not written: {hint}"
    assert sorted(set(found) - set(built)) == [], "samples no builder writes (remove them, or build them)"
    assert [p for p in built if built[p] != found[p]] == [], f"stale samples: {hint}"


@pytest.mark.parametrize("case", apigw.API_CASES, ids=[f"{c.layer}/{c.name}" for c in apigw.API_CASES])
def test_each_request_sample_is_a_route_of_the_function_its_folder_names(case: apigw.ApiCase) -> None:
    function = function_of_layer(case.layer)
    [route] = [r for r in template().routes if (r.method, r.path) == (case.method, case.route)]
    event = case.event()

    assert route.function == function, f"{case.route_key} is routed to {route.function}, not {function}"
    assert route.public == case.public, f"{case.route_key}: public is {route.public} in the template"
    assert ("authorizer" in event["requestContext"]) == (not route.public)
    assert event["routeKey"] == event["requestContext"]["routeKey"] == route.route_key
    names = re.findall(r"\{(\w+)\+?\}", route.path)
    assert sorted(event.get("pathParameters", {})) == sorted(names)
    pattern = re.sub(r"\\\{\w+\\\+\\\}", ".+", re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(route.path)))
    assert re.fullmatch(pattern, event["rawPath"]), f"{event['rawPath']} is not a path of {route.path}"
    assert event["rawPath"] == event["requestContext"]["http"]["path"]
    assert all(name == name.lower() for name in event["headers"]), "API Gateway passes header names in lower case"
    if "body" in event:
        assert event["headers"]["content-length"] == str(len(event["body"].encode()))
        json.loads(event["body"])


def test_every_function_has_a_ready_probe_a_list_a_write_and_a_refused_request() -> None:
    by_layer = defaultdict(list)
    for case in apigw.API_CASES:
        by_layer[case.layer].append(case)
    layers = {spec.code_uri.name for spec in template().functions.values()}
    assert set(by_layer) == layers

    for layer, cases in by_layer.items():
        kinds = {
            "ready": any(c.name == "health-ready" and c.status == 200 for c in cases),
            "read": any(c.method == "GET" and not c.public and c.status == 200 for c in cases),
            "refused": any(400 <= c.status < 500 and (c.body is not None or c.query) for c in cases),
        }
        assert all(kinds.values()), f"{layer}: {kinds}"
        writes = [c for c in cases if c.method in WRITE_METHODS and c.body is not None and c.status < 300]
        write_routes = {r for r in template_routes()[function_of_layer(layer)] if r[0] in WRITE_METHODS}
        # a function with write routes has a sample of one (L10 has none: the console writes through the others)
        assert bool(writes) == bool(write_routes), f"{layer}: write samples {writes}, write routes {write_routes}"


def test_the_authorizer_sample_is_for_the_templates_authorizer() -> None:
    event = apigw.AUTHORIZED_CASE.authorizer_event()

    assert template().authorizer_function == function_of_layer(apigw.AUTHORIZER_SAMPLE.parts[1])
    assert (event["version"], event["type"]) == ("2.0", "REQUEST")
    assert event["identitySource"] == [event["headers"][h] for h in template().authorizer_headers]
    assert event["routeArn"].endswith(f"/$default/{apigw.AUTHORIZED_CASE.method}{event['rawPath']}")
    assert "body" not in event
    assert "authorizer" not in event["requestContext"]


def test_every_schedule_and_queue_has_a_sample_and_each_command_one_for_its_function() -> None:
    built = apigw.samples()
    for schedule in template().schedules:
        layer = template().functions[schedule.function].code_uri.name
        job = json.loads(schedule.input or "{}")["schedule"]
        assert built[Path("schedule") / layer / f"{job}.json"] == json.loads(schedule.input or "{}")
    batches = {path: sample for path, sample in built.items() if path.parts[0] == "sqs" and path.name != "env.json"}
    queues = {apigw.queue_of_arn(record["eventSourceARN"]) for batch in batches.values() for record in batch["Records"]}
    assert queues == {source.queue for source in template().queue_sources}
    # `sam local invoke --env-vars events/sqs/env.json` gives each consumer the ARNs its samples come from
    env = built[Path("sqs/env.json")]
    for path, batch in batches.items():
        function = function_of_layer(path.parts[1])
        assert {r["eventSourceARN"] for r in batch["Records"]} <= set(env[function].values()), path
    for path, sample in built.items():
        if path.parts[0] == "command":
            function_of_layer(path.parts[1])
            assert path.stem == sample["command"]
