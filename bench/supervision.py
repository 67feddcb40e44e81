"""L08 decision latency per tool call, with and without the decision cache.

Two local clouds in turn, identical but for STRATA_DECISION_CACHE_S (5 s, then 0: off). In each, a tenant with a
realistic policy set (five policies besides the platform's: forbids by tool and by principal, an approval on a tool
not called, an allowlist by argument text) makes `--calls` tool calls (json_query, each a new call key, the same
input, so identical decision requests) through the front, as the runtime does. L03 reports the time its decision
took in each answer's Server-Timing header (`decision;dur=…;desc="cached"|"asked"`): the figures are those, per
call, p50 and p99. The baseline, from the same calls, is the whole tool call in L03 (`app;dur`), so the ratio is the
decision's share of a call. Writes bench/results/supervision.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:0] = [str(ROOT / "cli"), str(ROOT / "shared")]

POLICIES = {
    "no-shell-like-tools": '@reason("no code execution") forbid (principal, action == Strata::Action::"tool.invoke", '
    'resource == Strata::Tool::"python");',
    "mcp-needs-approval": '@approval("remote tools are reviewed") permit (principal, '
    'action == Strata::Action::"tool.invoke", resource) when { resource.source == "mcp" };',
    "no-jwt-tool-calls": 'forbid (principal, action == Strata::Action::"tool.invoke", resource) '
    'when { principal is Strata::Principal && principal.kind == "jwt" };',
    "big-plans-reviewed": '@approval("big plans are reviewed") @quorum("2") permit (principal, '
    'action == Strata::Action::"plan.approve", resource) when { context.task_count > 50 };',
    "no-side-effects-at-night": 'forbid (principal, action == Strata::Action::"tool.invoke", resource) '
    'when { resource.side_effects && context.run_id == "frozen" };',
}
TIMING = re.compile(r'(\w+);dur=([0-9.]+)(?:;desc="(\w+)")?')


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timings(header: str) -> dict[str, tuple[float, str]]:
    return {m.group(1): (float(m.group(2)), m.group(3) or "") for m in TIMING.finditer(header)}


async def measure(cache_s: str, calls: int, warmup: int) -> dict[str, Any]:
    import httpx

    from strata_cli.localcloud.cloud import LocalCloud, LocalCloudConfig

    state = Path(tempfile.mkdtemp(prefix="strata-bench-supervision-"))
    os.chmod(state, 0o755)  # pgserver's unprivileged postgres user must reach it
    unlimited = {"key_rps": 1e6, "key_burst": 1_000_000, "tenant_rps": 1e6, "tenant_burst": 1_000_000}
    tiers = {name: unlimited for name in ("free", "standard", "enterprise")}
    env = {"STRATA_DECISION_CACHE_S": cache_s, "STRATA_RATE_LIMIT_TIERS": json.dumps(tiers)}
    cloud = LocalCloud(LocalCloudConfig(root=ROOT, state_dir=state, port=0, extra_env=env))
    print(f"starting the local cloud (decision cache {cache_s} s)", file=sys.stderr, flush=True)
    await cloud.start()
    try:
        key = (await cloud.bootstrap_key(f"bench-supervision-{cache_s}"))["api_key"]
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=cloud.front_url, timeout=60) as api:
            for name, cedar in POLICIES.items():
                made = await api.post("/v1/policies", json={"name": name, "cedar": cedar}, headers=headers)
                if made.status_code != 201:
                    raise RuntimeError(f"policy {name}: {made.text}")
            run_id = str(uuid.uuid4())
            decision: list[float] = []
            call: list[float] = []
            wall: list[float] = []
            kinds: dict[str, int] = {}
            for n in range(warmup + calls):
                body = {"run_id": run_id, "task_id": "t", "step": n, "call_id": "c",
                        "input": {"data": {"n": 1}, "query": "n"}}  # fmt: skip
                started = time.perf_counter()
                answer = await api.post("/v1/tools/json_query/invoke", json=body, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status_code != 200 or answer.json()["status"] != "succeeded":
                    raise RuntimeError(f"call {n}: {answer.status_code} {answer.text[:300]}")
                found = timings(answer.headers["server-timing"])
                if n < warmup:
                    continue
                decision.append(found["decision"][0])
                call.append(found["app"][0])
                wall.append(elapsed)
                kinds[found["decision"][1]] = kinds.get(found["decision"][1], 0) + 1
    finally:
        await cloud.stop()
        shutil.rmtree(state, ignore_errors=True)
    return {
        "cache_s": float(cache_s),
        "calls": calls,
        "answered": kinds,
        "decision_ms": {"p50": pct(decision, 0.5), "p99": pct(decision, 0.99), "mean": statistics.fmean(decision)},
        "call_ms": {"p50": pct(call, 0.5), "p99": pct(call, 0.99)},
        "wall_ms": {"p50": pct(wall, 0.5), "p99": pct(wall, 0.99)},
    }


def report(results: list[dict[str, Any]]) -> None:
    print(f"\nDecision latency per tool call (L03 asking L08), {results[0]['calls']} calls each (ms)")
    print(f"{'':<28} {'p50':>7} {'p99':>7} {'call p50':>9} {'call p99':>9} {'share p50':>10} {'answered':>22}")
    for r in results:
        label = f"cache {r['cache_s']:g} s" if r["cache_s"] else "no cache (every call asks)"
        d, c = r["decision_ms"], r["call_ms"]
        answered = ", ".join(f"{k} {v}" for k, v in sorted(r["answered"].items()))
        print(f"{label:<28} {d['p50']:>7.2f} {d['p99']:>7.2f} {c['p50']:>9.2f} {c['p99']:>9.2f}"
              f" {d['p50'] / c['p50']:>9.0%} {answered:>22}")  # fmt: skip
    cached, uncached = results[0]["decision_ms"], results[1]["decision_ms"]
    print(f"\ncached / uncached decision: p50 {cached['p50'] / uncached['p50']:.2f}x, p99 "
          f"{cached['p99'] / uncached['p99']:.2f}x")  # fmt: skip
    print(
        "Decision: L03's time from asking to having the answer (an uncached one is an HTTP round trip through the"
        " front and authorizer to L08, which evaluates the tenant's Cedar set, records the decision and appends it"
        " to the audit chain). Call: L03's whole handling of the tool call (the baseline; includes the decision)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args(argv)

    async def both() -> list[dict[str, Any]]:
        return [await measure(cache, args.calls, args.warmup) for cache in ("5", "0")]

    results = asyncio.run(both())
    out = BENCH_DIR / "results" / "supervision.json"
    out.write_text(json.dumps(results, indent=2))
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
