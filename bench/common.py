"""What the benchmarks share: sample distributions, a Lambda context, child processes run as Lambda would see
them (with this folder on their path, so a benchmark script can run as its own child), and waiting for the
local cloud's bus to go quiet."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


class MeasurementError(Exception):
    """A child process failed, or answers were wrong, so figures are missing."""


@dataclass(frozen=True)
class Dist:
    """Samples of one measured thing, in one unit."""

    samples: list[float]

    def pct(self, q: int) -> float:
        return statistics.quantiles(self.samples, n=100, method="inclusive")[q - 1]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    def summary(self) -> dict[str, float]:
        return {"p50": self.p50, "p95": self.pct(95), "p99": self.pct(99), "n": len(self.samples)}


def ms(ns: list[int]) -> Dist:
    """Nanosecond samples as milliseconds."""
    return Dist([n / 1e6 for n in ns])


def us(ns: list[int]) -> Dist:
    """Nanosecond samples as microseconds."""
    return Dist([n / 1e3 for n in ns])


class LambdaContext:
    """The attributes and method of the Lambda runtime's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_s: int = 900, memory_mb: int = 1024) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def child_env(lambda_env: dict[str, str], pythonpath: Sequence[Path], pycache: Path) -> dict[str, str]:
    """What a worker of the function gets (the template's variables, resolved by the local cloud), plus the path
    (and this folder last, for the benchmark's own modules)."""
    from strata_cli.localcloud.lambdas import INHERITED_ENV

    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env.update(lambda_env)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (*pythonpath, BENCH_DIR))
    # bytecode goes to a private cache (warmed by a discarded round), never next to the sources
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def split_cpus() -> tuple[int, set[int]] | None:
    """One CPU for the measured process and the rest for everything around it (databases, the AWS emulator, the
    local cloud, the provider), as a Lambda function has its own vCPU; None on a single-CPU machine."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return cpus[0], set(cpus[1:])


async def run_child(args: list[str], env: dict[str, str], timeout_s: float, what: str, capture: bool = False) -> str:
    """Run this interpreter with -P (no script folder or cwd on sys.path); its stdout when `capture`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise MeasurementError(f"{what}: no answer in {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        tail = (err.decode(errors="replace").strip().splitlines() or ["(no output)"])[-1]
        raise MeasurementError(f"{what}: exit {proc.returncode}: {tail}")
    return (out or b"").decode(errors="replace")


async def settle(delivered: Callable[[], int], quiet_s: float = 1.0, limit_s: float = 15.0) -> None:
    """Wait until the bus has delivered nothing new for `quiet_s` (events reach their consumers first)."""
    deadline = time.monotonic() + limit_s
    last = delivered()
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_s)
        if delivered() == last:
            return
        last = delivered()
