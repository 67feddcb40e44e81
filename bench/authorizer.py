"""L09 authorizer benchmark: what authorizing a request costs, cold (the first authorization in a fresh interpreter,
against a bare FastAPI+Mangum app's cold start), warm with no decision cache (authorize() per call, against the bare
app's warm call), and through the local cloud's front with API Gateway's cached decision and without it (against
the public health route of the same function). Every baseline is measured in the same run."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import MeasurementError, child_env, ms, run_child, settle, us

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
SHARED = ROOT / "shared"
CLI = ROOT / "cli"
API_GATEWAY = ROOT / "functions" / "api_gateway"
BASELINE_DIR = ROOT / "bench" / "baseline_app"

FUNCTION = "ApiGatewayFunction"  # L09: the authorizer and the owner of both measured routes
HANDLER_MODULE = "strata_api_gateway.handler"
PUBLIC_ROUTE = "/health/api_gateway/live"
AUTH_ROUTE = "/v1/tenant"
BARE_ROUTE = "/hello"
# Tiers no timed request can exhaust: the rate limiter still runs (one Redis script per API-key request).
UNLIMITED = {"key_rps": 1e6, "key_burst": 1_000_000, "tenant_rps": 1e6, "tenant_burst": 1_000_000}
BENCH_TIERS = {name: UNLIMITED for name in ("free", "standard", "enterprise")}
REAUTHORIZE_S = 60  # template.yaml: the authorizer's ReauthorizeEvery (the front reads it from there)
WARM_BLOCK = 50
FRONT_BLOCK = 25

# Runs inside a fresh interpreter: the clock starts before the handler's import and stops after its first call.
COLD_PROBE = """\
import time
started = time.perf_counter()
from {module} import handler
imported = time.perf_counter()
import json, os
event = json.loads(os.environ["STRATA_BENCH_EVENT"])
first_started = time.perf_counter()
first = handler(event, None)
first_done = time.perf_counter()
second = handler(event, None)
second_done = time.perf_counter()
timings = {{
    "import_ms": (imported - started) * 1000,
    "first_ms": (first_done - first_started) * 1000,
    "second_ms": (second_done - first_done) * 1000,
}}
print("BENCH " + json.dumps({{**timings, "answers": [first, second]}}))
"""

# the warm calls, in the child process (names are the table's rows)
W_BARE = "bare app handler(GET /hello)"
W_SELECT = "pool.fetchval('SELECT 1')"
W_AUTH_KEY = "authorize(): API key"
W_AUTH_SVC = "authorize(): service token"
W_RATELIMIT = "ratelimit.charge(): API key's buckets"
W_HANDLER_KEY = "handler(): authorizer event, API key"
W_HANDLER_SVC = "handler(): authorizer event, svc token"
W_LIVE = f"handler(): GET {PUBLIC_ROUTE}"
W_TENANT = f"handler(): GET {AUTH_ROUTE}, authorized"
# the requests through the front
F_PUBLIC = f"GET {PUBLIC_ROUTE} (public)"
F_CACHED = f"GET {AUTH_ROUTE}, API key, cached decision"
F_UNCACHED_KEY = f"GET {AUTH_ROUTE}, API key, uncached"
F_UNCACHED_SVC = f"GET {AUTH_ROUTE}, svc token, uncached"


@dataclass(frozen=True)
class ColdTarget:
    name: str
    module: str
    pythonpath: tuple[Path, ...]
    event: dict[str, Any]
    expect: str  # "http-200" or "authorized"


@dataclass
class ColdResult:
    target: str
    import_ms: list[float]
    first_ms: list[float]
    second_ms: list[float]

    @property
    def total_ms(self) -> list[float]:
        return [a + b for a, b in zip(self.import_ms, self.first_ms, strict=True)]


def http_event(path: str, authorization: str | None = None, context: dict[str, str] | None = None) -> dict[str, Any]:
    """A payload 2.0 GET as the local front builds it (with the authorizer's context when one admitted it)."""
    now = datetime.now(UTC)
    headers = {"accept": "*/*", "host": "127.0.0.1", "user-agent": "strata-bench"}
    if authorization:
        headers["authorization"] = authorization
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "strata-bench",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"GET {path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if context is not None:
        event["requestContext"]["authorizer"] = {"lambda": context}
    return event


def authorizer_event(token: str, path: str = AUTH_ROUTE) -> dict[str, Any]:
    """The REQUEST authorizer event (payload 2.0) the front sends for a route needing `Authorization`."""
    event = http_event(path, f"Bearer {token}")
    del event["isBase64Encoded"]
    event.update(
        type="REQUEST",
        identitySource=[f"Bearer {token}"],
        routeArn=f"arn:aws:execute-api:us-east-1:000000000000:local/$default/GET{path}",
    )
    return event


# ---------------------------------------------------------------------------------------------------- cold


async def cold_probe(target: ColdTarget, env: dict[str, str]) -> dict[str, Any]:
    probe_env = {**env, "STRATA_BENCH_EVENT": json.dumps(target.event)}
    out = await run_child(["-c", COLD_PROBE.format(module=target.module)], probe_env, 120, target.name, capture=True)
    lines = [line for line in out.splitlines() if line.startswith("BENCH ")]
    if not lines:
        raise MeasurementError(f"{target.name}: the probe printed no result")
    result: dict[str, Any] = json.loads(lines[-1][len("BENCH ") :])
    for answer in result["answers"]:
        good = answer.get("statusCode") == 200 if target.expect == "http-200" else answer.get("isAuthorized") is True
        if not good:
            raise MeasurementError(f"{target.name}: unexpected answer {json.dumps(answer)[:300]}")
    return result


async def measure_cold(
    targets: list[ColdTarget], envs: dict[str, dict[str, str]], runs: int, rng: random.Random
) -> dict[str, ColdResult]:
    """`runs` rounds, each probing every target once in a shuffled order, after one discarded warm-up round."""
    results = {t.name: ColdResult(t.name, [], [], []) for t in targets}
    for round_no in range(runs + 1):
        order = list(targets)
        rng.shuffle(order)
        print(f"cold: round {'warm-up' if round_no == 0 else f'{round_no}/{runs}'}", file=sys.stderr, flush=True)
        for target in order:
            probe = await cold_probe(target, envs[target.name])
            if round_no > 0:
                results[target.name].import_ms.append(probe["import_ms"])
                results[target.name].first_ms.append(probe["first_ms"])
                results[target.name].second_ms.append(probe["second_ms"])
    return results


# ---------------------------------------------------------------------------------------------------- warm


@dataclass(frozen=True)
class WarmCall:
    name: str
    run: Callable[[], Any]  # an answer, or (is_async) a coroutine of one
    is_async: bool
    ok: Callable[[Any], bool]


def warm_worker(out: Path, calls: int, warmup: int) -> None:
    """Child side of the warm measurement: one process, one event loop (the one Mangum and the handler use), every
    call timed on its own; blocks of calls rotate between the variants so drift hits them all alike."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    from strata import db, ratelimit
    from strata.auth import mint_service_token
    from strata_api_gateway.authorizer import authorize
    from strata_api_gateway.handler import handler

    bare_app = importlib.import_module("bare_app")  # bench/baseline_app, on PYTHONPATH
    api_key = os.environ["STRATA_BENCH_API_KEY"]
    service_token = mint_service_token("bench", uuid.UUID(os.environ["STRATA_BENCH_TENANT_ID"]), ttl_s=3600)
    key_event, svc_event = authorizer_event(api_key), authorizer_event(service_token)
    admitted = loop.run_until_complete(authorize(key_event))
    if admitted.get("isAuthorized") is not True:
        raise SystemExit(f"the API key was not accepted: {admitted}")
    tenant_event = http_event(AUTH_ROUTE, f"Bearer {api_key}", admitted["context"])
    live_event, hello_event = http_event(PUBLIC_ROUTE), http_event(BARE_ROUTE)
    pool = loop.run_until_complete(db.get_pool())
    context = admitted["context"]
    tier = ratelimit.tier(context["tier"])

    def http_ok(answer: Any) -> bool:
        return isinstance(answer, dict) and answer.get("statusCode") == 200

    def authorized(answer: Any) -> bool:
        return isinstance(answer, dict) and answer.get("isAuthorized") is True

    variants = [
        WarmCall(W_BARE, lambda: bare_app.handler(hello_event, None), False, http_ok),
        WarmCall(W_SELECT, lambda: pool.fetchval("SELECT 1"), True, lambda answer: answer == 1),
        WarmCall(W_AUTH_KEY, lambda: authorize(key_event), True, authorized),
        WarmCall(W_AUTH_SVC, lambda: authorize(svc_event), True, authorized),
        WarmCall(
            W_RATELIMIT,
            lambda: ratelimit.charge(context["tenant_id"], context["principal_id"], tier),
            True,
            lambda answer: bool(answer.allowed),
        ),
        WarmCall(W_HANDLER_KEY, lambda: handler(key_event, None), False, authorized),
        WarmCall(W_HANDLER_SVC, lambda: handler(svc_event, None), False, authorized),
        WarmCall(W_LIVE, lambda: handler(live_event, None), False, http_ok),
        WarmCall(W_TENANT, lambda: handler(tenant_event, None), False, http_ok),
    ]
    clock = time.perf_counter_ns

    async def timed_async(call: WarmCall, n: int) -> tuple[list[int], bool]:
        samples, good = [], True
        for _ in range(n):
            started = clock()
            answer = await call.run()
            samples.append(clock() - started)
            good = good and call.ok(answer)
        return samples, good

    def timed(call: WarmCall, n: int) -> tuple[list[int], bool]:
        if call.is_async:
            return loop.run_until_complete(timed_async(call, n))
        samples, good = [], True
        for _ in range(n):
            started = clock()
            answer = call.run()
            samples.append(clock() - started)
            good = good and call.ok(answer)
        return samples, good

    failed: set[str] = set()
    for call in variants:
        if not timed(call, warmup + 1)[1]:
            failed.add(call.name)
    samples: dict[str, list[int]] = {call.name: [] for call in variants}
    for round_no in range(max(1, calls // WARM_BLOCK)):
        shift = round_no % len(variants)
        for call in variants[shift:] + variants[:shift]:
            block, good = timed(call, WARM_BLOCK)
            samples[call.name] += block
            if not good:
                failed.add(call.name)
    out.write_text(json.dumps({"samples_ns": samples, "failed": sorted(failed)}))


# ---------------------------------------------------------------------------------------------------- front


def front_client(url: str, tokens_file: Path, out: Path, requests: int, warmup: int) -> None:
    """Child side of the front measurement: one keep-alive HTTP/1.1 connection, requests one at a time."""
    import http.client
    from urllib.parse import urlsplit

    target = urlsplit(url)
    if target.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit(f"only loopback targets: {url}")
    tokens = json.loads(tokens_file.read_text())
    uncached_keys, uncached_svc = iter(tokens["uncached_keys"]), iter(tokens["uncached_service"])
    variants: list[tuple[str, str, Callable[[], str | None]]] = [
        (F_PUBLIC, PUBLIC_ROUTE, lambda: None),
        (F_CACHED, AUTH_ROUTE, lambda: str(tokens["cached"])),
        (F_UNCACHED_KEY, AUTH_ROUTE, lambda: next(uncached_keys)),
        (F_UNCACHED_SVC, AUTH_ROUTE, lambda: next(uncached_svc)),
    ]
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    clock = time.perf_counter_ns

    def request(path: str, token: str | None) -> int:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        started = clock()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = clock() - started
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}: {body[:300]!r}")
        return elapsed

    for _, path, token in variants:
        for _ in range(warmup):
            request(path, token())
    samples: dict[str, list[int]] = {name: [] for name, _, _ in variants}
    for round_no in range(max(1, requests // FRONT_BLOCK)):
        shift = round_no % len(variants)
        for name, path, token in variants[shift:] + variants[:shift]:
            for _ in range(FRONT_BLOCK):
                samples[name].append(request(path, token()))
    conn.close()
    out.write_text(json.dumps({"samples_ns": samples}))


# ---------------------------------------------------------------------------------------------------- setup


async def mint_keys(database_url: str, tenant_id: uuid.UUID, count: int) -> list[str]:
    """`count` fresh API keys of the tenant (tenant:read), written straight to L09's table as its store does."""
    import asyncpg

    from strata.auth import mint_api_key
    from strata_api_gateway import store

    conn = await asyncpg.connect(database_url)
    tokens = []
    try:
        async with conn.transaction():
            for n in range(count):
                key = mint_api_key()
                await store.insert_key(conn, uuid.uuid4(), tenant_id, f"bench-uncached-{n}", key, ["tenant:read"])
                tokens.append(key.token)
    finally:
        await conn.close()
    return tokens


class AuthorizationCounter:
    """Counts the authorizer events the front sends to a function's pool (this process's pool object only)."""

    def __init__(self, pool: Any) -> None:
        self.count = 0
        original = pool.invoke

        async def invoke(payload: dict[str, Any] | bytes) -> bytes:
            if isinstance(payload, dict) and payload.get("type") == "REQUEST":
                self.count += 1
            result: bytes = await original(payload)
            return result

        setattr(pool, "invoke", invoke)  # noqa: B010 - an instance attribute over the method, for this run


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path[:0] = [str(SHARED), str(CLI), str(API_GATEWAY)]
    from strata.auth import mint_service_token
    from strata.config import get_settings
    from strata_cli.localcloud.cloud import LocalCloud, LocalCloudConfig

    state = Path(tempfile.mkdtemp(prefix="strata-bench-auth-"))
    os.chmod(state, 0o755)  # pgserver's unprivileged postgres user must reach it
    pycache = state / "pycache"
    config = LocalCloudConfig(
        root=ROOT, state_dir=state, port=0, extra_env={"STRATA_RATE_LIMIT_TIERS": json.dumps(BENCH_TIERS)}
    )
    cloud = LocalCloud(config)
    print("starting the local cloud", file=sys.stderr, flush=True)
    started = time.perf_counter()
    await cloud.start()
    try:
        print(f"local cloud up in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        admin = await cloud.bootstrap_key("bench-authorizer", ["tenant:read"])
        tenant_id = uuid.UUID(admin["tenant_id"])
        lambda_env = dict(cloud.pools[FUNCTION].env)
        # the service-token secret, as the functions fetch it; only this process mints with it from the environment
        secret_id = cloud.resource("ServiceTokenSecret")
        secret = cloud.clients("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        os.environ["STRATA_SERVICE_TOKEN_SECRET"] = secret
        get_settings.cache_clear()
        per_variant = args.front_warmup + FRONT_BLOCK * max(1, args.requests // FRONT_BLOCK)
        uncached_keys = await mint_keys(cloud.services.database_url, tenant_id, per_variant)
        # distinct tokens (the service name differs), so each is a new identity source for the front's cache
        uncached_service = [mint_service_token(f"bench-{n}", tenant_id, ttl_s=3600) for n in range(per_variant)]
        cold_service_token = mint_service_token("bench-cold", tenant_id, ttl_s=3600)
        assert cloud.router is not None
        router = cloud.router
        await settle(lambda: router.delivered)

        function_path = (API_GATEWAY, SHARED)
        targets = [
            ColdTarget("bare", "bare_app", (BASELINE_DIR,), http_event(BARE_ROUTE), "http-200"),
            ColdTarget("API key", HANDLER_MODULE, function_path, authorizer_event(admin["api_key"]), "authorized"),
            ColdTarget(
                "service token", HANDLER_MODULE, function_path, authorizer_event(cold_service_token), "authorized"
            ),
        ]
        envs = {t.name: child_env(lambda_env, t.pythonpath, pycache) for t in targets}
        cold = await measure_cold(targets, envs, args.cold_runs, random.Random(args.seed))

        print(f"warm: {args.calls} calls per variant, in one process", file=sys.stderr, flush=True)
        warm_out = state / "warm.json"
        warm_env = child_env(lambda_env, (API_GATEWAY, SHARED, BASELINE_DIR), pycache)
        warm_env.update(STRATA_BENCH_API_KEY=admin["api_key"], STRATA_BENCH_TENANT_ID=str(tenant_id))
        warm_args = [str(SCRIPT), "--warm-worker", str(warm_out)]
        warm_args += ["--calls", str(args.calls), "--warmup", str(args.warmup)]
        await run_child(warm_args, warm_env, 600, "warm worker")
        warm = json.loads(warm_out.read_text())

        print(f"front: {args.requests} requests per variant through {cloud.front_url}", file=sys.stderr, flush=True)
        tokens_file = state / "tokens.json"
        tokens_file.touch(mode=0o600)
        tokens_file.write_text(
            json.dumps(
                {"cached": admin["api_key"], "uncached_keys": uncached_keys, "uncached_service": uncached_service}
            )
        )
        front_out = state / "front.json"
        front_args = [
            str(SCRIPT),
            "--front-client",
            cloud.front_url,
            str(tokens_file),
            str(front_out),
        ]
        front_args += ["--requests", str(args.requests), "--front-warmup", str(args.front_warmup)]
        counter = AuthorizationCounter(cloud.pools[FUNCTION])
        invocations_before, front_started = cloud.pools[FUNCTION].invocations, time.monotonic()
        await run_child(front_args, child_env({}, (), pycache), 600, "front client")
        invocations = cloud.pools[FUNCTION].invocations - invocations_before
        authorizations = counter.count
        front_s = time.monotonic() - front_started
        front = json.loads(front_out.read_text())
    finally:
        await cloud.stop()
        shutil.rmtree(state, ignore_errors=True)
    front_requests = 4 * per_variant
    return {
        "cold": cold,
        "warm": warm,
        "front": front,
        "front_requests": front_requests,
        "authorizer_invocations": authorizations,
        "other_invocations": invocations - front_requests - authorizations,  # e.g. L09's own schedules
        "uncached_requests": 2 * per_variant,
        "front_s": front_s,
    }


# ---------------------------------------------------------------------------------------------------- report


def print_cold(cold: dict[str, ColdResult], runs: int) -> dict[str, Any]:
    bare = cold["bare"]
    bare_total, bare_first = statistics.median(bare.total_ms), statistics.median(bare.first_ms)
    print(
        f"\n(a) Cold: import + first call in a fresh interpreter (median of {runs} rounds, shuffled, after a warm-up)"
    )
    print(
        f"{'first call':<26} {'import ms':>10} {'1st call ms':>12} {'total ms':>9} {'vs bare':>8} {'min ms':>7}"
        f" {'min vs bare':>11} {'2nd call ms':>12}"
    )
    report: dict[str, Any] = {}
    for name, result in cold.items():
        total = statistics.median(result.total_ms)
        label = {"bare": "bare app GET /hello", "API key": "authorize, API key"}.get(name, f"authorize, {name}")
        print(
            f"{label:<26} {statistics.median(result.import_ms):>10.1f} {statistics.median(result.first_ms):>12.1f} "
            f"{total:>9.1f} {total / bare_total:>7.2f}x {min(result.total_ms):>7.1f}"
            f" {min(result.total_ms) / min(bare.total_ms):>10.2f}x {statistics.median(result.second_ms):>12.2f}"
        )
        report[name] = {
            "import_ms": statistics.median(result.import_ms),
            "first_call_ms": statistics.median(result.first_ms),
            "second_call_ms": statistics.median(result.second_ms),
            "total_ms": total,
            "total_ratio": total / bare_total,
            "min_total_ms": min(result.total_ms),
            "min_total_ratio": min(result.total_ms) / min(bare.total_ms),
            "first_call_ratio": statistics.median(result.first_ms) / bare_first,
            "samples_total_ms": result.total_ms,
        }
    print(
        "  (the L09 rows import its whole handler, as Lambda does; 1st call = pool connect + key lookup for an API"
        " key,\n   Secrets Manager fetch of the HMAC key for a service token; 2nd call = the same, warm)"
    )
    return report


def print_warm(warm: dict[str, Any]) -> dict[str, Any]:
    dists = {name: us(ns) for name, ns in warm["samples_ns"].items()}
    base = dists[W_BARE]
    print(f"\n(b) Warm, no decision cache: {len(base.samples)} calls each, one process, blocks of {WARM_BLOCK} rotated")
    print(f"{'call':<44} {'p50 us':>9} {'p95 us':>9} {'p99 us':>9} {'p50 vs bare':>12}")
    report: dict[str, Any] = {}
    for name, dist in dists.items():
        note = "  baseline" if name == W_BARE else ""
        if name in warm["failed"]:
            note += "  BAD ANSWERS"
        print(
            f"{name:<44} {dist.p50:>9.1f} {dist.pct(95):>9.1f} {dist.pct(99):>9.1f} {dist.p50 / base.p50:>11.2f}x{note}"
        )
        report[name] = {**dist.summary(), "p50_ratio": dist.p50 / base.p50}
    return report


def print_front(
    front: dict[str, Any], invocations: int, other: int, uncached: int, total: int, seconds: float
) -> dict[str, Any]:
    dists = {name: ms(ns) for name, ns in front["samples_ns"].items()}
    base = dists[F_PUBLIC]
    print(
        f"\n(c) + 2. Through the local cloud's front (HTTP/1.1 keep-alive, one client, sequential): "
        f"{len(base.samples)} requests each, blocks of {FRONT_BLOCK} rotated"
    )
    print(
        f"{'request':<40} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'+p50 ms':>8} {'+p95 ms':>8} {'+p99 ms':>8}"
        f" {'p50 ratio':>9}"
    )
    report: dict[str, Any] = {}
    for name, dist in dists.items():
        extra = [dist.p50 - base.p50, dist.pct(95) - base.pct(95), dist.pct(99) - base.pct(99)]
        print(
            f"{name:<40} {dist.p50:>7.2f} {dist.pct(95):>7.2f} {dist.pct(99):>7.2f} {extra[0]:>+8.2f} "
            f"{extra[1]:>+8.2f} {extra[2]:>+8.2f} {dist.p50 / base.p50:>8.2f}x" + ("  baseline" if dist is base else "")
        )
        report[name] = {
            **dist.summary(),
            "p50_added_ms": extra[0],
            "p95_added_ms": extra[1],
            "p99_added_ms": extra[2],
            "p50_ratio": dist.p50 / base.p50,
        }
    cached_calls = invocations - uncached
    print(
        f"  authorizer invocations during these {total} requests (warm-ups included, {seconds:.0f} s): {invocations};"
        f" {uncached} for the uncached requests,\n  {cached_calls} for the cached key's {total // 4} requests"
        f" (expected: its first, then one per ReauthorizeEvery {REAUTHORIZE_S} s window ="
        f" {math.ceil(seconds / REAUTHORIZE_S)}); other invocations of L09 meanwhile (its schedules): {other}"
        "\n  every row includes one invocation of L09 through the local Lambda"
        " runtime (the public row is that floor); an uncached row adds a second, the authorizer's"
    )
    report["authorizer_invocations"] = {
        "total": invocations,
        "uncached_requests": uncached,
        "cached_key": cached_calls,
        "front_seconds": seconds,
        "other_invocations": other,
    }
    return report


def print_breakdown(cold: dict[str, Any], warm: dict[str, Any], front: dict[str, Any]) -> dict[str, float]:
    route_work = warm[W_TENANT]["p50"] - warm[W_LIVE]["p50"]
    cached_added = front[F_CACHED]["p50_added_ms"]
    invocation = front[F_UNCACHED_KEY]["p50"] - front[F_CACHED]["p50"]
    svc_invocation = front[F_UNCACHED_SVC]["p50"] - front[F_CACHED]["p50"]
    figures = {
        "cold_first_authorization_api_key_ms": cold["API key"]["first_call_ms"],
        "cold_total_ratio_api_key": cold["API key"]["total_ratio"],
        "warm_authorize_api_key_p50_us": warm[W_AUTH_KEY]["p50"],
        "warm_authorize_service_token_p50_us": warm[W_AUTH_SVC]["p50"],
        "warm_select_1_p50_us": warm[W_SELECT]["p50"],
        "warm_rate_limit_p50_us": warm[W_RATELIMIT]["p50"],
        "cached_added_p50_ms": cached_added,
        "route_work_in_function_p50_ms": route_work / 1000,
        "uncached_api_key_over_cached_p50_ms": invocation,
        "uncached_service_token_over_cached_p50_ms": svc_invocation,
    }
    print("\nPer request, at the median:")
    print(
        f"  cold: the first API-key authorization of a fresh environment takes {cold['API key']['first_call_ms']:.0f}"
        f" ms after the import; import + call is {cold['API key']['total_ratio']:.2f}x the bare app's cold start"
    )
    print(
        f"  warm, uncached: authorize() is {warm[W_AUTH_KEY]['p50']:.0f} us for an API key (a bare SELECT 1 on the"
        f" pool: {warm[W_SELECT]['p50']:.0f} us), {warm[W_AUTH_SVC]['p50']:.0f} us for a service token"
    )
    print(
        f"  cached decision: the authorizer is not invoked; {AUTH_ROUTE} costs {cached_added:+.2f} ms over the public"
        f" route, of which {route_work / 1000:.2f} ms is the function's own extra work for it (in-process handler"
        f" difference: rate-limit script in Redis, {warm[W_RATELIMIT]['p50']:.0f} us alone, scope check, the route)"
    )
    print(
        f"  no cached decision: {invocation:+.2f} ms over the cached one for an API key, {svc_invocation:+.2f} ms for a"
        f" service token (which also skips the rate limiter): one more local invocation of L09, of which the"
        f" authorizer's own work is {warm[W_HANDLER_KEY]['p50'] / 1000:.2f} /"
        f" {warm[W_HANDLER_SVC]['p50'] / 1000:.2f} ms (in-process handler())"
    )
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="Starts its own local cloud (embedded Postgres, Redis, moto; loopback only). Exit status 1 if a "
        "measurement failed.",
    )
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh interpreters per cold target (5)")
    parser.add_argument("--calls", type=int, default=1000, help="timed warm calls per variant (1000)")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up calls per variant before timing (100)")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per variant through the front (100)")
    parser.add_argument("--front-warmup", type=int, default=10, help="warm-up requests per front variant (10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cold rounds' shuffled order (0)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--warm-worker", type=Path, metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--front-client", nargs=3, metavar=("URL", "TOKENS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_runs < 1 or args.calls < WARM_BLOCK or args.requests < FRONT_BLOCK:
        parser.error(f"--cold-runs must be >= 1, --calls >= {WARM_BLOCK}, --requests >= {FRONT_BLOCK}")
    if args.warmup < 0 or args.front_warmup < 1:
        parser.error("--warmup must be >= 0 and --front-warmup >= 1 (it primes the cached decision)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.warm_worker:
        warm_worker(args.warm_worker, args.calls, args.warmup)
        return 0
    if args.front_client:
        url, tokens, out = args.front_client
        front_client(url, Path(tokens), Path(out), args.requests, args.front_warmup)
        return 0

    try:
        measured = asyncio.run(run(args))
    except MeasurementError as exc:
        print(f"measurement failed: {exc}", file=sys.stderr)
        return 1
    print(f"\nPython {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs; L09 = {FUNCTION}")
    cold = print_cold(measured["cold"], args.cold_runs)
    warm = print_warm(measured["warm"])
    front = print_front(
        measured["front"],
        measured["authorizer_invocations"],
        measured["other_invocations"],
        measured["uncached_requests"],
        measured["front_requests"],
        measured["front_s"],
    )
    figures = print_breakdown(cold, warm, front)
    failed = bool(measured["warm"]["failed"])
    if failed:
        print(f"\nbad answers during the warm calls: {', '.join(measured['warm']['failed'])}")
    if args.json:
        report = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "options": {k: v for k, v in vars(args).items() if k not in ("json", "warm_worker", "front_client")},
            "cold": {"baseline": "bare", "rounds": args.cold_runs, "targets": cold},
            "warm_us": {"baseline": W_BARE, "calls": warm},
            "front_ms": {"baseline": F_PUBLIC, "requests": front},
            "summary": figures,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
