"""L04 model gateway benchmark: the latency the gateway adds to a chat call over calling the provider directly.

One run measures, against a loopback OpenAI-compatible server (tests/support/provider_servers.py FakeOpenAI, in a
process of its own):

1. the baselines: the provider called directly with an httpx POST (the client the OpenAI Python SDK uses: how
   applications mostly call a provider directly, and the target's baseline), with a bare aiohttp POST (the
   gateway's client), and with the gateway's own adapter (OpenAICompatibleProvider.chat; the gateway minus this is
   what its logic alone adds, printed as logic+p50);
2. the gateway in-process: L04's Lambda handler given API Gateway (payload 2.0) events for POST /v1/models/chat
   with the authorizer's context, on real Postgres and Redis: answer cache off, cache hit, cache miss (a new
   question each call), and cache off for a tenant with a budget (reserve and settle);
3. through the local cloud's front over HTTP, for reference, against a direct HTTP call to the provider.

Baselines and variants are interleaved in rotating blocks, so drift hits all of them alike. Then a per-stage
breakdown of gateway calls (timing wrappers around the gateway's steps) and a cProfile of cache-off calls.
Targets (architecture doc): the gateway adds <= 2 ms at the median and <= 10 ms at p99."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import http.client
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import LambdaContext, MeasurementError, child_env, ms, run_child, settle, split_cpus

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
SHARED = ROOT / "shared"
CLI = ROOT / "cli"
GATEWAY = ROOT / "functions" / "model_gateway"

FUNCTION = "ModelGatewayFunction"  # L04
CHAT_ROUTE = "/v1/models/chat"
LIVE_ROUTE = "/health/model_gateway/live"
PROVIDER_NAME = "openai"
PROVIDER_KEY = "sk-test"
PROVIDER_MODEL = "gpt-4o-mini"
MODEL = "gpt"  # the tenants' catalogue entry for PROVIDER_MODEL at PROVIDER_NAME
PROMPT = "Say hello in one short sentence."
MAX_TOKENS = 64
CATALOGUE_ENTRY = {
    "name": MODEL,
    "provider": PROVIDER_NAME,
    "provider_model": PROVIDER_MODEL,
    "context_window": 128000,
    "capabilities": ["chat", "tools", "json", "streaming"],
    "input_usd_per_mtok": 1,
    "output_usd_per_mtok": 2,
}
BUDGET = {"scope": "tenant", "period": "month", "limit_micro_usd": 10**15}  # never reached; reserve/settle run
# limits no timed request can exhaust: the limiters still run (their Redis scripts), they just never refuse
UNLIMITED = {"key_rps": 1e6, "key_burst": 1_000_000, "tenant_rps": 1e6, "tenant_burst": 1_000_000}
BENCH_TIERS = {name: UNLIMITED for name in ("free", "standard", "enterprise")}
BENCH_MODEL_LIMITS = {tier: {"rpm": 10**7, "tpm": 10**10} for tier in ("free", "standard", "enterprise")}
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
BLOCK = 50  # in-process calls per block
WARMUP_S = 10.0  # in-process warm-up lasts at least this long
FRONT_BLOCK = 25
STAGE_BLOCK = 25

# the in-process variants (table rows)
B_HTTPX = "direct: httpx POST (the OpenAI SDK's client)"
B_AIOHTTP = "direct: aiohttp POST (the gateway's client)"
B_ADAPTER = "direct: the gateway's adapter (aiohttp)"
G_OFF = "gateway handler(): cache off"
G_HIT = "gateway handler(): cache hit"
G_MISS = "gateway handler(): cache miss (+ store)"
G_BUDGET = "gateway handler(): cache off, tenant budget"
# the target's baseline: a provider called directly the way Python applications mostly do (the OpenAI SDK sends
# its requests with httpx); the adapter row shows what the gateway's own logic adds over its own provider call
BASELINE = B_HTTPX
GATEWAY_VARIANTS = {G_OFF: "off", G_HIT: "hit", G_MISS: "miss", G_BUDGET: "off"}  # -> the answer's `cache`
# the requests over HTTP
F_DIRECT = "direct: POST provider /v1/chat/completions"
F_LIVE = f"front: GET {LIVE_ROUTE}"
F_OFF = f"front: POST {CHAT_ROUTE}, cache off"
F_HIT = f"front: POST {CHAT_ROUTE}, cache hit"

# Runs in a process of its own: the loopback provider, until its stdin closes.
PROVIDER_SERVER = """\
import sys
from tests.support.provider_servers import FakeOpenAI
with FakeOpenAI(api_key=sys.argv[1]) as fake:
    print(fake.url, flush=True)
    sys.stdin.read()
"""


def chat_body(cache: bool, content: str = PROMPT) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": MAX_TOKENS,
        "cache": cache,
    }


def provider_body() -> dict[str, Any]:
    """What the adapter sends for the same question (OpenAICompatibleProvider._chat_body)."""
    return {"model": PROVIDER_MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS}


def chat_event(body: dict[str, Any], context: dict[str, str]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) POST of `body` to the chat route, admitted by the authorizer."""
    now = datetime.now(UTC)
    raw = json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": f"POST {CHAT_ROUTE}",
        "rawPath": CHAT_ROUTE,
        "rawQueryString": "",
        "headers": {
            "accept": "application/json",
            "content-type": "application/json",
            "content-length": str(len(raw)),
            "host": "127.0.0.1",
            "user-agent": "strata-bench",
        },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": {"lambda": context},
            "domainName": "127.0.0.1",
            "domainPrefix": "127",
            "http": {
                "method": "POST",
                "path": CHAT_ROUTE,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "strata-bench",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"POST {CHAT_ROUTE}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": raw,
        "isBase64Encoded": False,
    }


# ---------------------------------------------------------------------------------------------------- in-process


@dataclass(frozen=True)
class Variant:
    name: str
    prepare: Callable[[], Any]  # the next call's argument (untimed)
    run: Callable[[Any], Any]  # an answer, or (is_async) a coroutine of one
    is_async: bool
    ok: Callable[[Any], bool]


class StageClock:
    """Timing wrappers around the gateway's steps: per request, the nanoseconds (and calls) spent in each."""

    def __init__(self) -> None:
        self.current: dict[str, list[int]] | None = None
        self._undo: list[tuple[Any, str, Any]] = []

    def add(self, name: str, ns: int) -> None:
        if self.current is not None:
            spent = self.current.setdefault(name, [0, 0])
            spent[0] += ns
            spent[1] += 1

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)
        clock = time.perf_counter_ns

        @functools.wraps(original)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return await original(*args, **kwargs)
            finally:
                self.add(name, clock() - started)

        self._undo.append((owner, attribute, original))
        setattr(owner, attribute, timed)

    def wrap_sync(self, owner: Any, attribute: str, name: str) -> None:
        """A blocking function (run in a worker thread): its wall time, and that thread's CPU as `name`_cpu."""
        original = getattr(owner, attribute)
        clock, cpu = time.perf_counter_ns, time.thread_time_ns

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, started_cpu = clock(), cpu()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(name, clock() - started)
                self.add(f"{name}_cpu", cpu() - started_cpu)

        self._undo.append((owner, attribute, original))
        setattr(owner, attribute, timed)

    def unwrap(self) -> None:
        for owner, attribute, original in reversed(self._undo):
            setattr(owner, attribute, original)
        self._undo.clear()


# (key, depth, label): the breakdown's rows; "*" rows are derived (total minus the timed children)
STAGES: list[tuple[str, int, str]] = [
    ("handler", 0, "handler() total"),
    ("*outside", 1, "Mangum + FastAPI + validation + answer (derived)"),
    ("web_rate", 2, "middleware: request rate limit (not on model routes)"),
    ("web_log", 2, "middleware: request log entry (queued)"),
    ("spool", 2, "end of request: log, usage, settle, cache (1 pipeline)"),
    ("chat", 1, "gateway.chat()"),
    ("rate", 2, "rate limits: key, tenant, model RPM + TPM (prefetched)"),
    ("entries", 2, "catalogue.entries (prefetched from Redis)"),
    ("candidates", 2, "routing.candidates"),
    ("cached", 2, "_cached: answer cache lookup"),
    ("cache_get", 3, "answer_cache.get (prefetched)"),
    ("applicable", 2, "budgets.applicable (prefetched)"),
    ("reserve", 2, "budgets.reserve (Redis script)"),
    ("allow", 2, "Breaker.allow (prefetched state)"),
    ("provider", 2, "provider.chat (the provider call)"),
    ("record", 2, "Breaker.record (Redis script when not clean)"),
    ("meter", 2, "meter: the usage record, queued"),
    ("remember", 2, "_remember"),
    ("cache_put", 3, "answer_cache.put (deferred to the end)"),
    ("settle", 2, "budgets.settle (deferred to the end)"),
    ("*other", 2, "rest of gateway.chat (derived)"),
]
# the timed steps directly inside gateway.chat (the rest of it is "*other")
CHAT_CHILDREN = ["rate", "entries", "candidates", "cached", "applicable", "reserve", "allow", "provider", "record"]
CHAT_CHILDREN += ["meter", "remember", "settle"]


def install_stage_clock(clock: StageClock) -> None:
    import strata.web
    from strata import spool
    from strata.breaker import Breaker
    from strata_model_gateway import answer_cache, budgets, catalogue, gateway, routing
    from strata_model_gateway.providers.openai_compat import OpenAICompatibleProvider

    for owner, attribute, name in [
        (strata.web, "_rate_limit", "web_rate"),
        (strata.web, "_log_request", "web_log"),
        (gateway, "chat", "chat"),
        (gateway, "enforce_rate_limits", "rate"),
        (catalogue, "entries", "entries"),
        (routing, "candidates", "candidates"),
        (gateway, "_cached", "cached"),
        (answer_cache, "get", "cache_get"),
        (budgets, "applicable", "applicable"),
        (budgets, "reserve", "reserve"),
        (Breaker, "allow", "allow"),
        (OpenAICompatibleProvider, "chat", "provider"),
        (Breaker, "record", "record"),
        (gateway, "meter", "meter"),
        (gateway, "_remember", "remember"),
        (answer_cache, "put", "cache_put"),
        (budgets, "settle", "settle"),
        (spool, "send", "spool"),
    ]:
        clock.wrap(owner, attribute, name)


def profile_rows(profile: cProfile.Profile, calls: int, top: int) -> dict[str, Any]:
    """Own CPU time of the main thread by function and by package, per call, from a cProfile run."""
    import pstats

    stats: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    by_function = []
    by_package: dict[str, float] = {}
    for (filename, line, function), (_, ncalls, own, cumulative, _) in stats.items():
        by_function.append((own, cumulative, ncalls, f"{short_path(filename)}:{line}({function})"))
        package = package_of(filename)
        by_package[package] = by_package.get(package, 0.0) + own
    by_function.sort(reverse=True)
    total = sum(by_package.values())
    return {
        "calls": calls,
        "own_us_per_call_total": total / calls * 1e6,
        "functions": [
            {"own_us": own / calls * 1e6, "cum_us": cum / calls * 1e6, "ncalls": n / calls, "function": name}
            for own, cum, n, name in by_function[:top]
        ],
        "packages": {name: own / calls * 1e6 for name, own in sorted(by_package.items(), key=lambda item: -item[1])},
    }


def short_path(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def package_of(filename: str) -> str:
    if filename.startswith("<") or filename == "~":
        return "builtins (C)"
    path = short_path(filename)
    if "functions/model_gateway/" in path:
        return "strata_model_gateway"
    if path.startswith("shared/"):
        return "strata (layer)"
    if "site-packages/" in filename:
        return path.split("/", 1)[0].split(".", 1)[0]
    return "stdlib: " + path.split("/", 1)[0].removesuffix(".py")


async def _aiohttp_session(headers: dict[str, str]) -> Any:
    import aiohttp

    return aiohttp.ClientSession(headers=headers, cookie_jar=aiohttp.DummyCookieJar())


def inproc_worker(out: Path, calls: int, warmup: int, stage_calls: int, profile_calls: int) -> None:
    """Child side of the in-process measurement: one process, one event loop (the one Mangum and the handler use),
    every call timed on its own (wall and process CPU); blocks of calls rotate between the variants."""
    if os.environ.get("STRATA_BENCH_CPU"):  # the CPU of its own (see split_cpus)
        os.sched_setaffinity(0, {int(os.environ["STRATA_BENCH_CPU"])})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    import httpx

    from strata_model_gateway.handler import handler
    from strata_model_gateway.providers.base import ChatRequest, ChatResult, Message
    from strata_model_gateway.providers.openai_compat import OpenAICompatibleProvider

    provider_url = os.environ["STRATA_BENCH_PROVIDER_URL"]
    tenants: dict[str, dict[str, str]] = json.loads(os.environ["STRATA_BENCH_CONTEXTS"])
    adapter = OpenAICompatibleProvider("bench", provider_url, PROVIDER_KEY)
    request = ChatRequest(PROVIDER_MODEL, (Message("user", PROMPT),), max_tokens=MAX_TOKENS, timeout_s=25)
    headers = {"accept": "application/json", "authorization": f"Bearer {PROVIDER_KEY}"}
    client = httpx.AsyncClient(headers=headers)
    session = loop.run_until_complete(_aiohttp_session(headers))
    url, body = f"{provider_url}/v1/chat/completions", provider_body()
    context = LambdaContext(FUNCTION)

    async def bare_post(_: Any) -> Any:
        response = await client.post(url, json=body, timeout=25)
        response.raise_for_status()
        return response.json()

    async def aiohttp_post(_: Any) -> Any:
        async with session.post(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}) as r:
            r.raise_for_status()
            return json.loads(await r.read())

    def answered(cache: str) -> Callable[[Any], bool]:
        def ok(answer: Any) -> bool:
            if not (isinstance(answer, dict) and answer.get("statusCode") == 200):
                return False
            return bool(json.loads(answer["body"]).get("cache") == cache)

        return ok

    events = {
        G_OFF: chat_event(chat_body(False), tenants["plain"]),
        G_HIT: chat_event(chat_body(True), tenants["plain"]),
        G_BUDGET: chat_event(chat_body(False), tenants["budget"]),
    }
    asked = iter(range(10**9))

    def fixed(name: str) -> Callable[[], Any]:
        return lambda: events[name]

    def next_question() -> Any:
        return chat_event(chat_body(True, f"{PROMPT} ({uuid.uuid4().hex[:8]} #{next(asked)})"), tenants["plain"])

    variants = [
        Variant(B_HTTPX, lambda: None, bare_post, True, lambda a: isinstance(a, dict) and "choices" in a),
        Variant(B_AIOHTTP, lambda: None, aiohttp_post, True, lambda a: isinstance(a, dict) and "choices" in a),
        Variant(B_ADAPTER, lambda: None, lambda _: adapter.chat(request), True, lambda a: isinstance(a, ChatResult)),
        Variant(G_OFF, fixed(G_OFF), lambda e: handler(e, context), False, answered("off")),
        Variant(G_HIT, fixed(G_HIT), lambda e: handler(e, context), False, answered("hit")),
        Variant(G_MISS, next_question, lambda e: handler(e, context), False, answered("miss")),
        Variant(G_BUDGET, fixed(G_BUDGET), lambda e: handler(e, context), False, answered("off")),
    ]
    wall, cpu = time.perf_counter_ns, time.process_time_ns
    bad: dict[str, str] = {}

    def check(call: Variant, answer: Any) -> None:
        if not call.ok(answer) and call.name not in bad:
            bad[call.name] = json.dumps(answer, default=str)[:300]

    async def timed_async(call: Variant, n: int) -> tuple[list[int], list[int]]:
        walls, cpus = [], []
        for _ in range(n):
            arg = call.prepare()
            started, started_cpu = wall(), cpu()
            answer = await call.run(arg)
            walls.append(wall() - started)
            cpus.append(cpu() - started_cpu)
            check(call, answer)
        return walls, cpus

    def timed(call: Variant, n: int) -> tuple[list[int], list[int]]:
        if call.is_async:
            result: tuple[list[int], list[int]] = loop.run_until_complete(timed_async(call, n))
            return result
        walls, cpus = [], []
        for _ in range(n):
            arg = call.prepare()
            started, started_cpu = wall(), cpu()
            answer = call.run(arg)
            walls.append(wall() - started)
            cpus.append(cpu() - started_cpu)
            check(call, answer)
        return walls, cpus

    print(f"in-process: warm-up, {warmup} calls per variant and at least {WARMUP_S:g} s", file=sys.stderr, flush=True)
    warm_until = time.monotonic() + WARMUP_S
    for call in variants:  # the first cache-on call stores the answer the hits then find
        timed(call, warmup + 1)
    while time.monotonic() < warm_until:  # steady state: the platform's start-up work (migrations, bootstrap,
        for call in variants:  # first scheduled jobs) settles on the other CPU before anything is timed
            timed(call, 5)
    bad.clear()
    samples: dict[str, dict[str, list[int]]] = {call.name: {"wall_ns": [], "cpu_ns": []} for call in variants}
    rounds = max(1, calls // BLOCK)
    for round_no in range(rounds):
        if round_no % 4 == 0:
            print(f"in-process: round {round_no + 1}/{rounds}", file=sys.stderr, flush=True)
        shift = round_no % len(variants)
        for call in variants[shift:] + variants[:shift]:
            walls, cpus = timed(call, BLOCK)
            samples[call.name]["wall_ns"] += walls
            samples[call.name]["cpu_ns"] += cpus

    gateway_calls = [v for v in variants if v.name in GATEWAY_VARIANTS]
    print(f"in-process: cProfile of {profile_calls} cache-off calls", file=sys.stderr, flush=True)
    profile = cProfile.Profile(time.thread_time_ns, 1e-9)  # the main thread's CPU time, not wall
    profile.enable()
    timed(gateway_calls[0], profile_calls)
    profile.disable()
    profiled = profile_rows(profile, profile_calls, 25)

    print(f"in-process: stage breakdown, {stage_calls} calls per variant", file=sys.stderr, flush=True)
    clock = StageClock()
    install_stage_clock(clock)
    stages: dict[str, list[dict[str, list[int]]]] = {v.name: [] for v in gateway_calls}
    for round_no in range(max(1, stage_calls // STAGE_BLOCK)):
        shift = round_no % len(gateway_calls)
        for call in gateway_calls[shift:] + gateway_calls[:shift]:
            for _ in range(STAGE_BLOCK):
                arg = call.prepare()
                clock.current = {}
                started = wall()
                answer = call.run(arg)
                clock.current["handler"] = [wall() - started, 1]
                stages[call.name].append(clock.current)
                clock.current = None
                check(call, answer)
    clock.unwrap()
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(session.close())
    loop.run_until_complete(adapter.aclose())
    out.write_text(json.dumps({"samples": samples, "bad": bad, "stages": stages, "profile": profiled}))


# ---------------------------------------------------------------------------------------------------- front


def front_client(front_url: str, provider_url: str, api_key: str, out: Path, requests: int, warmup: int) -> None:
    """Child side of the HTTP measurement: one keep-alive HTTP/1.1 connection to the front and one to the
    provider, requests one at a time, blocks rotated."""
    connections: dict[str, http.client.HTTPConnection] = {}
    for name, url in (("front", front_url), ("provider", provider_url)):
        target = urlsplit(url)
        if target.hostname not in ("127.0.0.1", "::1", "localhost") or target.port is None:
            raise SystemExit(f"only loopback targets: {url}")
        connections[name] = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    front_auth = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
    provider_auth = {"authorization": f"Bearer {PROVIDER_KEY}", "content-type": "application/json"}
    bodies = {
        F_DIRECT: json.dumps(provider_body()),
        F_OFF: json.dumps(chat_body(False)),
        F_HIT: json.dumps(chat_body(True)),
    }
    variants: list[tuple[str, str, str, str, dict[str, str], str | None]] = [
        (F_DIRECT, "provider", "POST", "/v1/chat/completions", provider_auth, None),
        (F_LIVE, "front", "GET", LIVE_ROUTE, {}, None),
        (F_OFF, "front", "POST", CHAT_ROUTE, front_auth, "off"),
        (F_HIT, "front", "POST", CHAT_ROUTE, front_auth, "hit"),
    ]
    bad: dict[str, str] = {}

    def request(name: str, conn: str, method: str, path: str, headers: dict[str, str], cache: str | None) -> int:
        started = time.perf_counter_ns()
        connections[conn].request(method, path, body=bodies.get(name), headers=headers)
        response = connections[conn].getresponse()
        data = response.read()
        elapsed = time.perf_counter_ns() - started
        good = response.status == 200 and (cache is None or json.loads(data).get("cache") == cache)
        if not good and name not in bad:
            bad[name] = f"{response.status} {data[:300]!r}"
        return elapsed

    for variant in variants:  # primes the front's cached decision and the answer cache
        for _ in range(warmup):
            request(*variant)
    bad.clear()
    samples: dict[str, list[int]] = {v[0]: [] for v in variants}
    for round_no in range(max(1, requests // FRONT_BLOCK)):
        shift = round_no % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            for _ in range(FRONT_BLOCK):
                samples[variant[0]].append(request(*variant))
    for conn in connections.values():
        conn.close()
    out.write_text(json.dumps({"samples_ns": samples, "bad": bad}))


# ---------------------------------------------------------------------------------------------------- setup


@contextlib.asynccontextmanager
async def provider_server(env: dict[str, str]) -> AsyncIterator[str]:
    """The loopback OpenAI-compatible server in a process of its own (not competing with the local cloud's loop
    for this interpreter's GIL); yields its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",
        "-c",
        PROVIDER_SERVER,
        PROVIDER_KEY,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        url = line.decode().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise MeasurementError(f"the provider server did not start (said {url!r})")
        yield url
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def api(client: Any, method: str, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.request(method, path, json=body, headers={"authorization": f"Bearer {key}"})
    if response.status_code not in (200, 201):
        raise MeasurementError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    answer: dict[str, Any] = response.json()
    return answer


def authorizer_context(tenant_id: str, principal_id: str) -> dict[str, str]:
    """What L09's authorizer passes on for an admin API key of an enterprise tenant."""
    return {
        "tenant_id": tenant_id,
        "principal_id": principal_id,
        "kind": "api_key",
        "scopes": "admin",
        "tier": "enterprise",
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path[:0] = [str(SHARED), str(CLI)]
    import httpx

    from strata_cli.localcloud.cloud import LocalCloud, LocalCloudConfig

    cpus = split_cpus()
    if cpus is not None:  # every process started from here on (the children inherit it) stays off the measured CPU
        os.sched_setaffinity(0, cpus[1])
    state = Path(tempfile.mkdtemp(prefix="strata-bench-l04-"))
    os.chmod(state, 0o755)  # pgserver's unprivileged postgres user must reach it
    pycache = state / "pycache"
    async with provider_server(child_env({}, (ROOT, CLI, SHARED), pycache)) as provider_url:
        providers = [{"name": PROVIDER_NAME, "kind": "openai", "base_url": provider_url, "api_key": PROVIDER_KEY}]
        extra_env = {
            "STRATA_MODEL_PROVIDERS": json.dumps(providers),
            "STRATA_RATE_LIMIT_TIERS": json.dumps(BENCH_TIERS),
            "STRATA_MODEL_LIMITS": json.dumps(BENCH_MODEL_LIMITS),
        }
        cloud = LocalCloud(LocalCloudConfig(root=ROOT, state_dir=state, port=0, extra_env=extra_env))
        print("starting the local cloud", file=sys.stderr, flush=True)
        started = time.perf_counter()
        await cloud.start()
        try:
            print(f"local cloud up in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
            plain = await cloud.bootstrap_key("bench-gateway")
            budgeted = await cloud.bootstrap_key("bench-gateway-budget")
            async with httpx.AsyncClient(base_url=cloud.front_url, timeout=30) as client:
                for key in (plain, budgeted):
                    await api(client, "POST", "/v1/models", key["api_key"], CATALOGUE_ENTRY)
                await api(client, "POST", "/v1/budgets", budgeted["api_key"], BUDGET)
            assert cloud.router is not None
            router = cloud.router
            await settle(lambda: router.delivered)

            contexts = {
                "plain": authorizer_context(plain["tenant_id"], plain["key_id"]),
                "budget": authorizer_context(budgeted["tenant_id"], budgeted["key_id"]),
            }
            inproc_out = state / "inproc.json"
            env = child_env(dict(cloud.pools[FUNCTION].env), (GATEWAY, SHARED), pycache)
            env.update(STRATA_BENCH_PROVIDER_URL=provider_url, STRATA_BENCH_CONTEXTS=json.dumps(contexts))
            if cpus is not None:
                env["STRATA_BENCH_CPU"] = str(cpus[0])
            child_args = [str(SCRIPT), "--inproc-worker", str(inproc_out), "--calls", str(args.calls)]
            child_args += ["--warmup", str(args.warmup), "--stage-calls", str(args.stage_calls)]
            child_args += ["--profile-calls", str(args.profile_calls)]
            delivered_before, inproc_started = router.delivered, time.monotonic()
            await run_child(child_args, env, 900, "in-process worker")
            inproc_s = time.monotonic() - inproc_started
            delivered_inproc = router.delivered - delivered_before
            inproc = json.loads(inproc_out.read_text())

            print(f"front: {args.requests} requests per variant through {cloud.front_url}", file=sys.stderr, flush=True)
            front_out = state / "front.json"
            key_file = state / "key"
            key_file.touch(mode=0o600)
            key_file.write_text(plain["api_key"])
            front_args = [str(SCRIPT), "--front-client", cloud.front_url, provider_url, str(key_file), str(front_out)]
            front_args += ["--requests", str(args.requests), "--front-warmup", str(args.front_warmup)]
            await run_child(front_args, child_env({}, (), pycache), 900, "front client")
            front = json.loads(front_out.read_text())
        finally:
            await cloud.stop()
            shutil.rmtree(state, ignore_errors=True)
    return {
        "inproc": inproc,
        "front": front,
        "inproc_s": inproc_s,
        "archived_during_inproc": delivered_inproc,
        "measured_cpu": cpus[0] if cpus is not None else None,
    }


# ---------------------------------------------------------------------------------------------------- report


def verdict(value: float, target: float) -> str:
    return "yes" if value <= target else "NO"


def print_inproc(inproc: dict[str, Any], seconds: float, archived: int, cpu: int | None) -> dict[str, Any]:
    placement = (
        f"the calls ran on CPU {cpu} alone (as a Lambda function has its vCPU), everything else (Postgres, Redis,"
        f" the AWS emulator, the local cloud, the provider) on the other CPU(s)"
        if cpu is not None
        else f"every process shared the {os.cpu_count()} CPU(s)"
    )
    walls = {name: ms(s["wall_ns"]) for name, s in inproc["samples"].items()}
    cpus = {name: ms(s["cpu_ns"]) for name, s in inproc["samples"].items()}
    base = walls[BASELINE]
    n = len(base.samples)
    print(
        f"\n1+2. In-process ({n} calls each, one process and loop, blocks of {BLOCK} rotated, {seconds:.0f} s):"
        f" latency of one chat call, ms"
    )
    adapter = walls[B_ADAPTER]
    print(
        f"{'call':<44} {'p50':>7} {'p95':>7} {'p99':>7} {'+p50':>7} {'+p99':>7} {'ratio':>6} {'cpu p50':>8}"
        f" {'p50<=2':>6} {'p99<=10':>7} {'logic+p50':>9}"
    )
    report: dict[str, Any] = {}
    for name, dist in walls.items():
        added50, added99 = dist.p50 - base.p50, dist.pct(99) - base.pct(99)
        logic = f" {dist.p50 - adapter.p50:>+9.2f}" if name in GATEWAY_VARIANTS else ""
        note = "  baseline" if name == BASELINE else ""
        if name in inproc["bad"]:
            note += "  BAD ANSWERS"
        meets = (
            f" {verdict(added50, TARGET_P50_MS):>6} {verdict(added99, TARGET_P99_MS):>7}"
            if name in GATEWAY_VARIANTS
            else f" {'':>6} {'':>7}"
        )
        print(
            f"{name:<44} {dist.p50:>7.2f} {dist.pct(95):>7.2f} {dist.pct(99):>7.2f} {added50:>+7.2f} {added99:>+7.2f}"
            f" {dist.p50 / base.p50:>5.2f}x {cpus[name].p50:>8.2f}{meets}{logic}{note}"
        )
        report[name] = {
            **dist.summary(),
            "added_p50_ms": added50,
            "added_p95_ms": dist.pct(95) - base.pct(95),
            "added_p99_ms": added99,
            "p50_ratio": dist.p50 / base.p50,
            "cpu_p50_ms": cpus[name].p50,
            "cpu_p99_ms": cpus[name].pct(99),
            "over_adapter_p50_ms": dist.p50 - adapter.p50,
            "over_adapter_p99_ms": dist.pct(99) - adapter.pct(99),
        }
    print(
        f"  +p50/+p99: minus the baseline's ({BASELINE}) p50/p99; targets: +{TARGET_P50_MS:g} ms p50,"
        f" +{TARGET_P99_MS:g} ms p99\n  logic+p50: minus the p50 of the gateway's own adapter called directly (what"
        f" the gateway's logic alone adds)\n  cpu: this process's CPU time during the call (all its threads);"
        f" the rest is waiting (provider, Postgres, Redis, EventBridge)\n  {placement}; meanwhile the local cloud"
        f" delivered {archived} events (ModelUsageRecorded, to L01's archive)"
    )
    return report


def print_front(front: dict[str, Any]) -> dict[str, Any]:
    dists = {name: ms(ns) for name, ns in front["samples_ns"].items()}
    base = dists[F_DIRECT]
    print(
        f"\n3. Through the local cloud's front (HTTP/1.1 keep-alive, sequential): {len(base.samples)} requests each,"
        f" blocks of {FRONT_BLOCK} rotated, ms"
    )
    print(f"{'request':<44} {'p50':>7} {'p95':>7} {'p99':>7} {'+p50':>7} {'+p99':>7} {'ratio':>6}")
    report: dict[str, Any] = {}
    for name, dist in dists.items():
        added50, added99 = dist.p50 - base.p50, dist.pct(99) - base.pct(99)
        note = "  baseline" if dist is base else ""
        if name in front["bad"]:
            note += "  BAD ANSWERS"
        print(
            f"{name:<44} {dist.p50:>7.2f} {dist.pct(95):>7.2f} {dist.pct(99):>7.2f} {added50:>+7.2f} {added99:>+7.2f}"
            f" {dist.p50 / base.p50:>5.2f}x{note}"
        )
        report[name] = {**dist.summary(), "added_p50_ms": added50, "added_p99_ms": added99}
    print(
        "  every front row is one invocation of L04 through the local Lambda runtime (worker process, pipe), with"
        " L09's\n  decision cached by the front; the health row is that floor, without a model call"
    )
    return report


def stage_medians(calls: list[dict[str, list[int]]]) -> dict[str, tuple[float, float]]:
    """Per stage: (median microseconds per request, calls per request); derived rows computed per request."""
    per_request: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for call in calls:
        values = {name: spent[0] / 1000 for name, spent in call.items()}
        values["*outside"] = values["handler"] - values.get("chat", 0.0)
        values["*other"] = values.get("chat", 0.0) - sum(values.get(k, 0.0) for k in CHAT_CHILDREN)
        for name, value in values.items():
            per_request.setdefault(name, []).append(value)
        for name, spent in call.items():
            counts.setdefault(name, []).append(spent[1])
    return {
        name: (statistics.median(values), statistics.mean(counts.get(name, [1])))
        for name, values in per_request.items()
        if len(values) == len(calls)
    }


def print_stages(stages: dict[str, list[dict[str, list[int]]]]) -> dict[str, Any]:
    medians = {name: stage_medians(calls) for name, calls in stages.items()}
    short = {G_OFF: "off", G_HIT: "hit", G_MISS: "miss", G_BUDGET: "budget"}
    n = len(next(iter(stages.values())))
    print(
        f"\nPer-stage breakdown of one gateway call, in-process ({n} calls per variant, timing wrappers; median us"
        f" per request; nested rows are part of the row above)"
    )
    print(f"{'stage':<58}" + "".join(f" {short[name]:>8}" for name in stages))
    for key, depth, label in STAGES:
        cells = []
        for name in stages:
            found = medians[name].get(key)
            if found is None:
                cells.append(f" {'-':>8}")
            else:
                times = f"x{found[1]:g} " if found[1] > 1 and key[0] != "*" else ""
                cells.append(f" {times + format(found[0], '.0f'):>8}")
        print(f"{'  ' * depth + label:<58}" + "".join(cells))
    return {short[name]: {key: {"p50_us": v[0], "calls": v[1]} for key, v in m.items()} for name, m in medians.items()}


def print_profile(profile: dict[str, Any], top: int = 15) -> None:
    print(
        f"\ncProfile of {profile['calls']} cache-off handler() calls, timed by the main thread's CPU clock (the"
        f" PutEvents boto3 call runs in a\nworker thread, outside it): {profile['own_us_per_call_total']:.0f} us of"
        " CPU per call, profiler overhead included. By package, us per call:"
    )
    packages = list(profile["packages"].items())[:12]
    for start in range(0, len(packages), 3):
        print("  " + "  ".join(f"{name:<26} {us:>6.0f}" for name, us in packages[start : start + 3]))
    print(f"Top {top} functions by own CPU time, us per call (cumulative in brackets), calls per call:")
    for row in profile["functions"][:top]:
        print(f"  {row['own_us']:>6.0f} ({row['cum_us']:>6.0f})  x{row['ncalls']:<5g} {row['function'][:110]}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Starts its own local cloud (embedded Postgres, Redis, moto) and loopback provider. Exit status 1 if "
        "a measurement failed or an answer was wrong; never because of a figure.",
    )
    parser.add_argument("--calls", type=int, default=400, help=f"timed in-process calls per variant (400; >= {BLOCK})")
    parser.add_argument("--warmup", type=int, default=30, help="in-process warm-up calls per variant (30)")
    parser.add_argument("--stage-calls", type=int, default=100, help="calls per gateway variant, breakdown (100)")
    parser.add_argument("--profile-calls", type=int, default=50, help="cache-off calls under cProfile (50)")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per variant, front (100)")
    parser.add_argument("--front-warmup", type=int, default=10, help="warm-up requests per front variant (10)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--inproc-worker", type=Path, metavar="OUT", help=argparse.SUPPRESS)
    parser.add_argument("--front-client", nargs=4, metavar=("FRONT", "PROVIDER", "KEY", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < BLOCK or args.requests < FRONT_BLOCK or args.stage_calls < STAGE_BLOCK:
        parser.error(f"--calls must be >= {BLOCK}, --requests >= {FRONT_BLOCK}, --stage-calls >= {STAGE_BLOCK}")
    if args.warmup < 1 or args.front_warmup < 1 or args.profile_calls < 1:
        parser.error("--warmup, --front-warmup and --profile-calls must be >= 1 (the warm-ups prime the caches)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.inproc_worker:
        inproc_worker(args.inproc_worker, args.calls, args.warmup, args.stage_calls, args.profile_calls)
        return 0
    if args.front_client:
        front_url, provider_url, key_file, out = args.front_client
        key = Path(key_file).read_text().strip()
        front_client(front_url, provider_url, key, Path(out), args.requests, args.front_warmup)
        return 0

    try:
        measured = asyncio.run(run(args))
    except MeasurementError as exc:
        print(f"measurement failed: {exc}", file=sys.stderr)
        return 1
    print(f"\nPython {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs; L04 = {FUNCTION}")
    inproc = print_inproc(
        measured["inproc"], measured["inproc_s"], measured["archived_during_inproc"], measured["measured_cpu"]
    )
    front = print_front(measured["front"])
    stages = print_stages(measured["inproc"]["stages"])
    print_profile(measured["inproc"]["profile"])
    bad = {**measured["inproc"]["bad"], **measured["front"]["bad"]}
    for name, answer in bad.items():
        print(f"\nBAD ANSWERS from {name}: {answer}")
    summary = {
        "baseline": BASELINE,
        "baseline_p50_ms": inproc[BASELINE]["p50"],
        "baseline_p99_ms": inproc[BASELINE]["p99"],
        "targets_ms": {"added_p50": TARGET_P50_MS, "added_p99": TARGET_P99_MS},
        **{
            f"{GATEWAY_VARIANTS[name] if name != G_BUDGET else 'budget'}_added_{q}_ms": inproc[name][f"added_{q}_ms"]
            for name in GATEWAY_VARIANTS
            for q in ("p50", "p99")
        },
        "cache_hit_p50_ms": inproc[G_HIT]["p50"],
        "cache_hit_p99_ms": inproc[G_HIT]["p99"],
        "front_cache_off_added_p50_ms": front[F_OFF]["added_p50_ms"],
    }
    print(f"\nSummary (gateway added latency over {BASELINE}, ms; and over the gateway's own adapter):")
    for name in GATEWAY_VARIANTS:
        row = inproc[name]
        print(
            f"  {name:<44} +{row['added_p50_ms']:.2f} p50 (target {TARGET_P50_MS:g}:"
            f" {verdict(row['added_p50_ms'], TARGET_P50_MS)}), +{row['added_p99_ms']:.2f} p99 (target"
            f" {TARGET_P99_MS:g}: {verdict(row['added_p99_ms'], TARGET_P99_MS)}); over the adapter"
            f" +{row['over_adapter_p50_ms']:.2f} p50, +{row['over_adapter_p99_ms']:.2f} p99"
        )
    print(f"  cache hit: {inproc[G_HIT]['p50']:.2f} ms p50, {inproc[G_HIT]['p99']:.2f} ms p99 (no provider call)")
    if args.json:
        report = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "options": {k: v for k, v in vars(args).items() if k not in ("json", "inproc_worker", "front_client")},
            "in_process_ms": {"baseline": BASELINE, "calls": inproc},
            "front_ms": {"baseline": F_DIRECT, "requests": front},
            "stages_us": stages,
            "profile": measured["inproc"]["profile"],
            "summary": summary,
            "bad_answers": bad,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
