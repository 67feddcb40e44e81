"""Cold-import and warm-call benchmark of every Strata function against a bare FastAPI+Mangum app, in one run."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import BENCH_DIR, LambdaContext, MeasurementError

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared"
BASELINE_DIR = ROOT / "bench" / "baseline_app"
BASELINE = "bare"

COLD_TARGET = 1.25  # a function's cold import + app construction, as a multiple of the bare app's
WARM_TARGET = 1.3  # a function's warm per-call time (median), as a multiple of the bare app's

# The subprocesses' environment: enough for the settings and Powertools; the measured routes use no network.
BENCH_ENV = {
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Strata",
    "AWS_REGION": "us-east-1",
    "STRATA_EVENT_BUS_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",  # as Lambda sets it (the layer skips pydantic.v1 inside Lambda)
}

# Runs inside a fresh interpreter: the clock wraps only the import (which builds the app and the handler).
COLD_PROBE = "import time\nstarted = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - started)\n"

IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


@dataclass(frozen=True)
class Target:
    """One measured app: a Strata function, or the bare baseline."""

    name: str
    module: str
    pythonpath: tuple[Path, ...]
    route: str


@dataclass(frozen=True)
class ImportRow:
    """One line of `python -X importtime`."""

    module: str
    self_us: int
    cumulative_us: int
    depth: int


@dataclass
class ColdResult:
    target: str
    samples_ms: list[float]
    error: str | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)


@dataclass
class WarmResult:
    target: str
    samples_us: list[float]
    error: str | None = None
    bare_samples_us: list[float] = field(default_factory=list)  # the bare app, interleaved in the same process

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples_us)

    @property
    def ratio(self) -> float:
        """Median per call against the bare app's median measured in the same process, block by block."""
        return self.median_us / statistics.median(self.bare_samples_us)

    @property
    def p99_us(self) -> float:
        return statistics.quantiles(self.samples_us, n=100, method="inclusive")[98]


def http_api_v2_event(path: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) GET on an explicit route without an authorizer."""
    now = datetime.now(UTC)
    request_id = "bench" + uuid.uuid4().hex[:11]
    user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    return {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": "",
        "cookies": [],
        "headers": {
            "accept": "application/json",
            "accept-encoding": "gzip, deflate, br",
            "accept-language": "en-GB,en;q=0.9",
            "content-length": "0",
            "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "user-agent": user_agent,
            "x-amzn-trace-id": f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": f"GET {path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }


def discover_functions() -> list[Target]:
    """Every `functions/<layer>/strata_<layer>/handler.py`, probed on its `GET /health/<layer>/live` route."""
    targets = []
    for handler_file in sorted(ROOT.glob("functions/*/strata_*/handler.py")):
        package_dir = handler_file.parent
        layer = package_dir.parent.name
        targets.append(
            Target(
                name=layer,
                module=f"{package_dir.name}.handler",
                pythonpath=(package_dir.parent, SHARED),
                route=f"/health/{layer}/live",
            )
        )
    return targets


def baseline_target() -> Target:
    return Target(name=BASELINE, module="bare_app", pythonpath=(BASELINE_DIR,), route="/hello")


def child_env(target: Target, pycache: Path) -> dict[str, str]:
    """The parent's environment without its Python settings, plus the target's path and the benchmark's variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(BENCH_ENV)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (*target.pythonpath, BENCH_DIR))  # bench last: its own modules
    # Bytecode goes to a private cache (warmed by a discarded round), never next to the sources.
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_child(
    python: str, args: list[str], target: Target, pycache: Path, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    # -P: sys.path gets neither the working directory nor the script's folder, only PYTHONPATH and the installs.
    proc = subprocess.run(
        [python, "-P", *args],
        env=child_env(target, pycache),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise MeasurementError(f"{target.name}: exit {proc.returncode}: {tail}")
    return proc


def cold_import_ms(python: str, target: Target, pycache: Path) -> float:
    proc = run_child(python, ["-c", COLD_PROBE.format(module=target.module)], target, pycache, timeout_s=120)
    return float(proc.stdout.strip().splitlines()[-1]) * 1000


def measure_cold(
    python: str, targets: list[Target], runs: int, rng: random.Random, pycache: Path
) -> dict[str, ColdResult]:
    """`runs` rounds, each importing every target once in a shuffled order, after one discarded warm-up round."""
    results = {t.name: ColdResult(t.name, []) for t in targets}
    for round_no in range(runs + 1):
        order = [t for t in targets if results[t.name].error is None]
        rng.shuffle(order)
        label = "warm-up" if round_no == 0 else f"{round_no}/{runs}"
        print(f"cold import: round {label}", file=sys.stderr, flush=True)
        for target in order:
            try:
                elapsed = cold_import_ms(python, target, pycache)
            except (MeasurementError, subprocess.TimeoutExpired) as exc:
                results[target.name].error = str(exc)
                continue
            if round_no > 0:
                results[target.name].samples_ms.append(elapsed)
    return results


def measure_warm(
    python: str, targets: list[Target], warmup: int, calls: int, pycache: Path
) -> tuple[WarmResult, dict[str, WarmResult]]:
    """One process per function that also loads the bare app and alternates blocks of calls between the two, so
    each ratio compares calls made in the same process at the same time (the bare line pools every process)."""
    baseline, functions = targets[0], targets[1:]
    pooled = WarmResult(BASELINE, [])
    results: dict[str, WarmResult] = {}
    for target in functions:
        print(f"warm calls: {target.name} and bare, interleaved", file=sys.stderr, flush=True)
        paired = Target(target.name, target.module, (*target.pythonpath, *baseline.pythonpath), target.route)
        args = [str(Path(__file__).resolve()), "--warm-worker", target.module, target.route]
        args += ["--pair", baseline.module, baseline.route, "--warmup", str(warmup), "--calls", str(calls)]
        try:
            proc = run_child(python, args, paired, pycache, timeout_s=600)
            measured = json.loads(proc.stdout)
        except (MeasurementError, subprocess.TimeoutExpired) as exc:
            results[target.name] = WarmResult(target.name, [], str(exc))
            continue
        bare = [ns / 1000 for ns in measured["pair_samples_ns"]]
        results[target.name] = WarmResult(target.name, [ns / 1000 for ns in measured["samples_ns"]], None, bare)
        pooled.samples_us += bare
    if not pooled.samples_us:
        pooled.error = "no process produced bare samples"
    return pooled, results


def warm_worker(module: str, route: str, pair: tuple[str, str], warmup: int, calls: int) -> None:
    """Child side of the warm measurement: alternate blocks of timed calls between the function and the bare
    app (the order flips each block), and print both sets of samples as JSON."""
    block = 50
    apps = []
    for name, path in ((module, route), pair):
        handler = importlib.import_module(name).handler
        event = http_api_v2_event(path)
        context = LambdaContext(function_name=f"strata-bench-{name.split('.')[0]}")
        for _ in range(warmup + 1):
            response = handler(event, context)
        if response.get("statusCode") != 200:
            raise SystemExit(f"GET {path} answered {response.get('statusCode')}: {response.get('body')}")
        apps.append((handler, event, context))
    clock = time.perf_counter_ns
    samples: list[list[int]] = [[], []]
    statuses: set[int] = set()
    for round_no in range(max(1, calls // block)):
        for index in (0, 1) if round_no % 2 == 0 else (1, 0):
            handler, event, context = apps[index]
            for _ in range(block):
                started = clock()
                response = handler(event, context)
                samples[index].append(clock() - started)
                statuses.add(response["statusCode"])
    if statuses != {200}:
        raise SystemExit(f"answers other than 200 during the timed calls: {sorted(statuses)}")
    json.dump({"samples_ns": samples[0], "pair_samples_ns": samples[1]}, sys.stdout)


def importtime_runs(python: str, target: Target, pycache: Path, runs: int) -> list[list[ImportRow]]:
    """The `-X importtime` lines of `runs` fresh imports of the target (children precede their importer)."""
    parsed = []
    for _ in range(runs):
        proc = run_child(python, ["-X", "importtime", "-c", f"import {target.module}"], target, pycache, timeout_s=120)
        rows = []
        for line in proc.stderr.splitlines():
            match = IMPORTTIME_LINE.match(line)
            if match:
                own, cumulative, indent, name = match.groups()
                rows.append(ImportRow(name, int(own), int(cumulative), (len(indent) - 1) // 2))
        parsed.append(rows)
    return parsed


def extra_subtree_us(rows: list[ImportRow], extra: set[str]) -> dict[str, int]:
    """Per module, the self time of the modules in its import subtree (itself included) that are in `extra`."""
    totals: dict[str, int] = {}
    pending: dict[int, list[str]] = defaultdict(list)  # depth -> finished modules awaiting their importer
    for row in rows:
        children = pending.pop(row.depth + 1, [])
        total = (row.self_us if row.module in extra else 0) + sum(totals[c] for c in children)
        totals[row.module] = max(total, totals.get(row.module, 0))
        pending[row.depth].append(row.module)
    return totals


def extra_imports(function: list[list[ImportRow]], bare: list[list[ImportRow]], root: str, top: int) -> dict[str, Any]:
    """What the function imports that the bare app does not: the heaviest modules, and self time by package."""
    bare_modules = {row.module for rows in bare for row in rows}
    extra = {row.module for rows in function for row in rows} - bare_modules
    self_us: dict[str, list[int]] = defaultdict(list)
    cumulative_us: dict[str, list[int]] = defaultdict(list)
    extra_us: dict[str, list[int]] = defaultdict(list)
    depth: dict[str, int] = {}
    for rows in function:
        subtree = extra_subtree_us(rows, extra)
        # A dotted import can show twice in one run (the outer line wraps the parent package's import): merge them.
        run_self: dict[str, int] = defaultdict(int)
        run_cumulative: dict[str, int] = defaultdict(int)
        for row in rows:
            run_self[row.module] += row.self_us
            run_cumulative[row.module] = max(run_cumulative[row.module], row.cumulative_us)
            depth[row.module] = min(depth.get(row.module, row.depth), row.depth)
        for name in run_self:
            self_us[name].append(run_self[name])
            cumulative_us[name].append(run_cumulative[name])
            extra_us[name].append(subtree[name])

    def med(values: list[int]) -> int:
        return int(statistics.median(values)) if values else 0

    heaviest = sorted((name for name in extra if name != root), key=lambda name: -med(extra_us[name]))
    packages: dict[str, int] = defaultdict(int)
    for name in extra:
        packages[name.split(".")[0]] += med(self_us[name])
    return {
        "total_us": med(cumulative_us[root]),
        "baseline_total_us": med([row.cumulative_us for rows in bare for row in rows if row.module == "bare_app"]),
        "extra_self_us": sum(med(self_us[name]) for name in extra),
        "top_modules": [
            {
                "module": name,
                "extra_us": med(extra_us[name]),
                "cumulative_us": med(cumulative_us[name]),
                "self_us": med(self_us[name]),
                "depth": depth[name],
            }
            for name in heaviest[:top]
        ],
        "by_package": [
            {"package": package, "self_us": us}
            for package, us in sorted(packages.items(), key=lambda item: -item[1])[:top]
        ],
    }


def verdict(ratio: float, target: float) -> str:
    return "ok" if ratio <= target else f"MISS (> {target:.2f}x)"


def print_cold(baseline: ColdResult, functions: list[ColdResult], runs: int) -> list[str]:
    print(f"\nCold import + app construction (median of {runs} fresh interpreters; target <= {COLD_TARGET:.2f}x bare)")
    print(f"{'function':<18} {'median ms':>10} {'min ms':>9} {'max ms':>9} {'vs bare':>8} {'min vs':>7}  status")
    print(
        f"{BASELINE:<18} {baseline.median_ms:>10.1f} {min(baseline.samples_ms):>9.1f} "
        f"{max(baseline.samples_ms):>9.1f} {1.0:>7.2f}x {1.0:>6.2f}x  baseline"
    )
    misses = []
    for result in functions:
        if result.error is not None:
            print(f"{result.target:<18} {'-':>10} {'-':>9} {'-':>9} {'-':>8} {'-':>7}  FAILED: {result.error}")
            continue
        ratio = result.median_ms / baseline.median_ms
        if ratio > COLD_TARGET:
            misses.append(result.target)
        min_ratio = min(result.samples_ms) / min(baseline.samples_ms)  # the least disturbed runs, for noisy hosts
        print(
            f"{result.target:<18} {result.median_ms:>10.1f} {min(result.samples_ms):>9.1f} "
            f"{max(result.samples_ms):>9.1f} {ratio:>7.2f}x {min_ratio:>6.2f}x  {verdict(ratio, COLD_TARGET)}"
        )
    return misses


def print_warm(baseline: WarmResult, functions: list[WarmResult], warmup: int, calls: int, processes: int) -> list[str]:
    print(
        f"\nWarm per-call time, GET /health/<layer>/live via handler(event, context) "
        f"({warmup} warm-up then {calls} timed calls; target <= {WARM_TARGET:.2f}x bare median)"
    )
    print(f"{'function':<18} {'median us':>10} {'p99 us':>9} {'vs bare':>8} {'p99 vs':>7}  status")
    print(
        f"{BASELINE:<18} {baseline.median_us:>10.1f} {baseline.p99_us:>9.1f} {1.0:>7.2f}x {1.0:>6.2f}x  "
        f"baseline (GET /hello, pooled; each ratio is against the bare calls interleaved in its own process)"
    )
    misses = []
    for result in functions:
        if result.error is not None:
            print(f"{result.target:<18} {'-':>10} {'-':>9} {'-':>8} {'-':>7}  FAILED: {result.error}")
            continue
        ratio = result.ratio
        if ratio > WARM_TARGET:
            misses.append(result.target)
        print(
            f"{result.target:<18} {result.median_us:>10.1f} {result.p99_us:>9.1f} {ratio:>7.2f}x "
            f"{result.p99_us / baseline.p99_us:>6.2f}x  {verdict(ratio, WARM_TARGET)}"
        )
    return misses


def print_importtime(name: str, report: dict[str, Any]) -> None:
    print(
        f"\n{name}: -X importtime {report['total_us'] / 1000:.1f} ms vs bare {report['baseline_total_us'] / 1000:.1f}"
        f" ms; modules the bare app does not import account for {report['extra_self_us'] / 1000:.1f} ms (self)"
    )
    print("  by top-level package (self us of its extra modules, summed):")
    for row in report["by_package"]:
        print(f"    {row['package']:<36} {row['self_us']:>9}")
    print("  top extra modules; extra us = self time of the bare-absent modules in its import subtree:")
    print(f"    {'module':<40} {'extra us':>9} {'cumul. us':>9} {'self us':>9} {'depth':>5}")
    for row in report["top_modules"]:
        print(
            f"    {row['module']:<40} {row['extra_us']:>9} {row['cumulative_us']:>9} {row['self_us']:>9}"
            f" {row['depth']:>5}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="Exit status: 0 whatever the ratios (misses are printed); 1 if a measurement itself failed.",
    )
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per app for the cold import (7)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up calls before timing (200)")
    parser.add_argument("--calls", type=int, default=2000, help="timed warm calls per process (2000)")
    parser.add_argument(
        "--importtime-runs",
        type=int,
        default=3,
        help="-X importtime runs per app when explaining a cold miss (3; 0 skips the analysis)",
    )
    parser.add_argument("--top", type=int, default=12, help="rows per -X importtime listing (12)")
    parser.add_argument("--only", nargs="+", metavar="LAYER", help="measure only these functions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cold rounds' shuffled order (0)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the subprocesses (this one)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--warm-worker", nargs=2, metavar=("MODULE", "ROUTE"), help=argparse.SUPPRESS)
    parser.add_argument("--pair", nargs=2, metavar=("MODULE", "ROUTE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.calls < 100 or args.warmup < 0 or args.importtime_runs < 0:
        parser.error("--runs must be >= 1, --calls >= 100, --warmup and --importtime-runs >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.warm_worker:
        warm_worker(args.warm_worker[0], args.warm_worker[1], tuple(args.pair), args.warmup, args.calls)
        return 0

    functions = discover_functions()
    if args.only:
        functions = [f for f in functions if f.name in set(args.only)]
    if not functions:
        print("no function matched functions/*/strata_*/handler.py", file=sys.stderr)
        return 1
    baseline = baseline_target()
    targets = [baseline, *functions]
    print(f"{len(functions)} functions: {', '.join(f.name for f in functions)}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="strata-bench-pyc-") as cache_dir:
        pycache = Path(cache_dir)
        cold = measure_cold(args.python, targets, args.runs, random.Random(args.seed), pycache)
        if cold[BASELINE].error is not None:
            print(f"the baseline failed: {cold[BASELINE].error}", file=sys.stderr)
            return 1
        warm_base, warm = measure_warm(args.python, targets, args.warmup, args.calls, pycache)
        if warm_base.error is not None or not warm_base.samples_us:
            print(f"the baseline failed: {warm_base.error}", file=sys.stderr)
            return 1

        print(f"\nPython {platform.python_version()} ({args.python}) on {platform.platform()}, {os.cpu_count()} CPUs")
        cold_results = [cold[f.name] for f in functions]
        warm_results = [warm[f.name] for f in functions]
        cold_misses = print_cold(cold[BASELINE], cold_results, args.runs)
        warm_misses = print_warm(warm_base, warm_results, args.warmup, args.calls, len(functions) + 1)

        explanations: dict[str, dict[str, Any]] = {}
        if cold_misses and args.importtime_runs:
            print(
                f"\nWhy cold imports miss: -X importtime (median of {args.importtime_runs} runs), "
                "modules absent from the bare app"
            )
            bare_profile = importtime_runs(args.python, baseline, pycache, args.importtime_runs)
            for function in functions:
                if function.name in cold_misses:
                    profile = importtime_runs(args.python, function, pycache, args.importtime_runs)
                    explanations[function.name] = extra_imports(profile, bare_profile, function.module, args.top)
                    print_importtime(function.name, explanations[function.name])

    failed = [r.target for r in cold_results if r.error is not None]
    failed += [r.target for r in warm_results if r.error is not None]
    print("\nSummary:")
    print(
        f"  cold import target (<= {COLD_TARGET:.2f}x): "
        + (f"missed by {', '.join(cold_misses)}" if cold_misses else "met by every function")
    )
    print(
        f"  warm call target (<= {WARM_TARGET:.2f}x): "
        + (f"missed by {', '.join(warm_misses)}" if warm_misses else "met by every function")
    )
    if failed:
        print(f"  measurement failed for: {', '.join(sorted(set(failed)))}")

    if args.json:
        report = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "environment": BENCH_ENV,
            "cold": {
                "target_ratio": COLD_TARGET,
                "runs": args.runs,
                "seed": args.seed,
                "baseline": {
                    "name": BASELINE,
                    "median_ms": cold[BASELINE].median_ms,
                    "samples_ms": cold[BASELINE].samples_ms,
                },
                "functions": [cold_entry(r, cold[BASELINE]) for r in cold_results],
            },
            "warm": {
                "target_ratio": WARM_TARGET,
                "warmup_calls": args.warmup,
                "calls": args.calls,
                "baseline": {
                    "name": BASELINE,
                    "route": baseline.route,
                    "processes": len(functions) + 1,
                    "median_us": warm_base.median_us,
                    "p99_us": warm_base.p99_us,
                },
                "functions": [warm_entry(r, warm_base) for r in warm_results],
            },
            "cold_misses_importtime": explanations,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 1 if failed else 0


def cold_entry(result: ColdResult, baseline: ColdResult) -> dict[str, Any]:
    if result.error is not None:
        return {"name": result.target, "error": result.error}
    ratio = result.median_ms / baseline.median_ms
    return {
        "name": result.target,
        "median_ms": result.median_ms,
        "ratio": ratio,
        "min_ratio": min(result.samples_ms) / min(baseline.samples_ms),
        "meets_target": ratio <= COLD_TARGET,
        "samples_ms": result.samples_ms,
    }


def warm_entry(result: WarmResult, baseline: WarmResult) -> dict[str, Any]:
    if result.error is not None:
        return {"name": result.target, "error": result.error}
    ratio = result.ratio
    return {
        "name": result.target,
        "median_us": result.median_us,
        "p99_us": result.p99_us,
        "ratio": ratio,
        "p99_ratio": result.p99_us / baseline.p99_us,
        "meets_target": ratio <= WARM_TARGET,
    }


if __name__ == "__main__":
    sys.exit(main())
