"""Platform overhead per task: a 50-task plan of instant tools run by L02 through the local cloud, against a
LangGraph graph of 50 no-op nodes with a Postgres checkpointer, both on the same Postgres, in the same run.

Strata's figure is a run's wall time (RunStarted to RunCompleted, from the run's own timestamps) minus the time
its tools spent running (each call's duration_ms: the tool's own running time, measured around it by the L03
ledger, the ledger's transactions not in it) and its model time (none here), divided by the tasks. Every task's
hop is in it: the TaskReady event through the bus (EventBridge -> queue -> the function), the lease, L03's round
trip through the HTTP front and authorizer with the ledger's transaction, the checkpoint and the completion that
readies the next task. Two shapes: a chain (each task depends on the one before, so
nothing overlaps) and a fan-out (50 independent tasks, then one that joins them). LangGraph's figure is the graph's
wall time divided by its nodes; it is a library call in one process, which is the point of the comparison.

Run: `python bench/runtime.py [--runs 5] [--tasks 50]` (needs the `bench` extra: langgraph and its Postgres
checkpointer). Prints both figures and the ratio; writes bench/results/runtime.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:0] = [str(ROOT / "shared"), str(ROOT / "cli"), str(ROOT)]

TARGET_MS = 15.0
QUIET_S = 3.0


def chain(tasks: int) -> list[dict[str, Any]]:
    """`tasks` json_query tasks, each taking the previous one's output (an instant tool)."""
    plan: list[dict[str, Any]] = [
        {"task_id": "t0", "title": "first", "kind": "tool", "tool": "json_query", "input": {"data": 0, "query": "@"}}
    ]
    for n in range(1, tasks):
        plan.append(
            {
                "task_id": f"t{n}",
                "title": f"step {n}",
                "kind": "tool",
                "tool": "json_query",
                "depends_on": [f"t{n - 1}"],
                "input": {"data": {"$from": f"t{n - 1}", "path": "result"}, "query": "@"},
            }
        )
    return plan


def fan_out(tasks: int) -> list[dict[str, Any]]:
    """`tasks - 1` independent tasks, then one that joins them."""
    plan: list[dict[str, Any]] = [
        {"task_id": f"t{n}", "title": f"leaf {n}", "kind": "tool", "tool": "json_query",
         "input": {"data": n, "query": "@"}}
        for n in range(tasks - 1)
    ]  # fmt: skip
    plan.append(
        {
            "task_id": "join",
            "title": "join",
            "kind": "tool",
            "tool": "json_query",
            "depends_on": [t["task_id"] for t in plan],
            "input": {"data": [{"$from": t["task_id"], "path": "result"} for t in plan], "query": "length(@)"},
        }
    )
    return plan


async def strata_runs(api: Any, key: str, shape: str, tasks: list[dict[str, Any]], runs: int) -> list[dict[str, Any]]:
    headers = {"authorization": f"Bearer {key}"}
    name = f"bench-{shape}-{uuid.uuid4().hex[:6]}"
    made = await api.post(
        "/v1/plan-templates",
        json={"name": name, "patterns": [f"run {name}"], "parameters": {"type": "object"}, "body": {"tasks": tasks}},
        headers=headers,
    )
    if made.status_code != 201:
        raise RuntimeError(f"template: {made.status_code} {made.text[:300]}")
    results = []
    for _ in range(runs):
        await asyncio.sleep(QUIET_S)  # each run starts on a quiet platform (the last run's archive and events done)
        submitted_at = time.perf_counter()
        goal = (
            await api.post("/v1/goals", json={"text": f"run {name}", "strategy": "template"}, headers=headers)
        ).json()
        while goal["status"] not in ("completed", "failed", "cancelled", "rejected"):
            await asyncio.sleep(0.25)  # the figures come from the run's own timestamps; polling only costs CPU
            goal = (await api.get(f"/v1/goals/{goal['goal_id']}", headers=headers)).json()
        end_to_end_ms = (time.perf_counter() - submitted_at) * 1000
        if goal["status"] != "completed":
            raise RuntimeError(f"the {shape} run ended {goal['status']}: {goal.get('reasons')}")
        run = (await api.get(f"/v1/runs/{goal['run_id']}", headers=headers)).json()
        calls: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"run_id": run["run_id"], "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = (await api.get("/v1/tool-calls", params=params, headers=headers)).json()
            calls += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        wall_ms = (_ts(run["finished_at"]) - _ts(run["started_at"])) * 1000
        tool_ms = sum(c["duration_ms"] or 0 for c in calls)
        l03_ms = sum(t["tool_ms"] for t in run["tasks"])
        results.append(
            {
                "wall_ms": wall_ms,
                "tool_ms": tool_ms,
                "l03_round_trip_ms": l03_ms,
                "per_task_ms": (wall_ms - tool_ms) / len(tasks),
                "per_task_without_l03_ms": (wall_ms - l03_ms) / len(tasks),
                "end_to_end_ms": end_to_end_ms,
                "calls": len(calls),
            }
        )
        print(f"  strata {shape}: {results[-1]['per_task_ms']:.1f} ms/task (wall {wall_ms:.0f} ms)", file=sys.stderr)
    return results


def _ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


async def langgraph_runs(database_url: str, nodes: int, runs: int) -> list[dict[str, float]]:
    """A graph of `nodes` no-op nodes in a chain, checkpointed in Postgres after every node."""
    from typing import TypedDict

    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        n: int

    def node(state: State) -> State:
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    for n in range(nodes):
        graph.add_node(f"n{n}", node)
    graph.add_edge(START, "n0")
    for n in range(1, nodes):
        graph.add_edge(f"n{n - 1}", f"n{n}")
    graph.add_edge(f"n{nodes - 1}", END)
    results = []
    async with AsyncPostgresSaver.from_conn_string(database_url) as saver:
        await saver.setup()
        app = graph.compile(checkpointer=saver)
        await app.ainvoke({"n": 0}, {"configurable": {"thread_id": f"warm-{uuid.uuid4()}"}})  # warm-up
        for _ in range(runs):
            started = time.perf_counter()
            out = await app.ainvoke({"n": 0}, {"configurable": {"thread_id": str(uuid.uuid4())}})
            wall_ms = (time.perf_counter() - started) * 1000
            if out["n"] != nodes:
                raise RuntimeError(f"langgraph ran {out['n']} of {nodes} nodes")
            results.append({"wall_ms": wall_ms, "per_task_ms": wall_ms / nodes})
    return results


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from strata_cli.localcloud.cloud import LocalCloud, LocalCloudConfig

    state = Path(tempfile.mkdtemp(prefix="strata-bench-runtime-"))
    os.chmod(state, 0o755)  # pgserver's unprivileged postgres user must reach it
    cloud = LocalCloud(LocalCloudConfig(root=ROOT, state_dir=state, port=0))
    print("starting the local cloud", file=sys.stderr, flush=True)
    await cloud.start()
    try:
        key = (await cloud.bootstrap_key("bench-runtime"))["api_key"]
        async with httpx.AsyncClient(base_url=cloud.front_url, timeout=60) as api:
            # warm every execution environment the measured runs use (a fan-out scales each function out)
            await strata_runs(api, key, "warm-up", chain(10), 2)
            await strata_runs(api, key, "warm-up", fan_out(args.tasks), 2)
            shapes = {"chain": chain(args.tasks), "fan-out": fan_out(args.tasks)}
            strata = {shape: await strata_runs(api, key, shape, tasks, args.runs) for shape, tasks in shapes.items()}
        langgraph = await langgraph_runs(cloud.services.database_url, args.tasks, args.runs)
    finally:
        await cloud.stop()
        shutil.rmtree(state, ignore_errors=True)
    return {"tasks": args.tasks, "runs": args.runs, "strata": strata, "langgraph": langgraph}


def report(results: dict[str, Any]) -> None:
    tasks = results["tasks"]
    lg = statistics.median(r["per_task_ms"] for r in results["langgraph"])
    print(f"\nPlatform overhead per task, {tasks}-task plans, median of {results['runs']} runs (ms)")
    print(f"{'':<34} {'per task':>9} {'target':>7} {'meets':>6} {'vs LangGraph':>13} {'wall':>8} {'submit->done':>13}")
    for shape, runs in results["strata"].items():
        per_task = statistics.median(r["per_task_ms"] for r in runs)
        wall = statistics.median(r["wall_ms"] for r in runs)
        e2e = statistics.median(r["end_to_end_ms"] for r in runs)
        meets = "yes" if per_task <= TARGET_MS else "NO"
        print(
            f"{'Strata L02, ' + shape:<34} {per_task:>9.2f} {TARGET_MS:>7.0f} {meets:>6} {per_task / lg:>12.2f}x"
            f" {wall:>8.0f} {e2e:>13.0f}"
        )
        without = statistics.median(r["per_task_without_l03_ms"] for r in runs)
        print(f"{'  of which outside L03 round trips':<34} {without:>9.2f}")
    wall = statistics.median(r["wall_ms"] for r in results["langgraph"])
    print(f"{'LangGraph + AsyncPostgresSaver':<34} {lg:>9.2f} {'':>7} {'':>6} {'1.00x':>13} {wall:>8.0f}")
    print(
        "\nStrata's figure: run wall time minus the tools' own running time, per task; every hop is"
        " in it (bus, lease, L03 through the HTTP front and authorizer, ledger, checkpoint, completion)."
        " LangGraph's: one process, no network, a checkpoint per node."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    out = BENCH_DIR / "results" / "runtime.json"
    out.write_text(json.dumps(results, indent=2))
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
