"""`strata dev`: the local cloud, and the demo it carries through the platform once it is up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from strata_cli.client import ApiClient, ApiError
from strata_cli.display import between, console
from strata_cli.project import project_root, session_file

DEMO_TEMPLATE = {
    "name": "demo-word-count",
    "description": "Count the words of a text, then keep only the word count.",
    "patterns": ["count the words of {text}"],
    "parameters": {"type": "object", "properties": {"text": {"type": "string", "maxLength": 10000}}},
    "body": {
        "tasks": [
            {
                "task_id": "count",
                "title": "Count characters, words and lines",
                "kind": "tool",
                "tool": "text",
                "input": {"operation": "count", "text": "{{text}}"},
            },
            {
                "task_id": "words",
                "title": "Keep the word count",
                "kind": "tool",
                "tool": "json_query",
                "depends_on": ["count"],
                "input": {"data": {"$from": "count", "path": "result"}, "query": "words"},
            },
        ]
    },
}


def run_demo(api_url: str, key: str) -> None:
    """What the platform can carry end to end today: register an agent, see its event archived by L01, ask a
    model (routed by L04 to the cheapest that can answer in JSON; the embedded model by default), and submit a
    goal that L05 plans from a template into a signed task graph, L08 approves and L02 runs to completion."""
    with ApiClient(api_url, key) as api:
        name = f"demo-agent-{int(time.time())}"
        try:
            agent = api.post("/v1/agents", {"name": name, "capabilities": ["search", "summarise"]})
        except ApiError as exc:
            console.print(f"[red]demo: creating an agent answered {exc.status}: {exc.detail}[/red]")
            return
        console.print(f"demo: registered agent [bold]{name}[/bold] ({agent['did']})")
        try:
            _await_archived(api, agent["agent_id"])
            _ask_a_model(api)
            _run_a_goal(api)
        except ApiError as exc:  # the local cloud stays up for the user even when the demo cannot finish
            console.print(f"[yellow]demo: {escape(exc.message())}[/yellow]")


def _run_a_goal(api: ApiClient) -> None:
    try:
        api.post("/v1/plan-templates", DEMO_TEMPLATE)
    except ApiError as exc:
        if exc.status != 409:  # 409: a previous demo made it
            console.print(f"[yellow]demo: creating a plan template answered {exc.status}: {exc.detail}[/yellow]")
            return
    text = "Count the words of 'Strata plans goals into signed task graphs'"
    try:
        goal = api.post("/v1/goals", {"text": text, "strategy": "template"})
    except ApiError as exc:
        console.print(f"[yellow]demo: submitting a goal answered {exc.status}: {exc.detail}[/yellow]")
        return
    console.print(f"demo: submitted the goal [bold]{text}[/bold]")
    deadline = time.monotonic() + 60
    shown_plan = False
    while True:
        if goal.get("plan_id") and not shown_plan:  # (a fast run may be done by the first look that sees it)
            plan = api.get(f"/v1/plans/{goal['plan_id']}")
            steps = " -> ".join(f"{t['task_id']} ({t['tool']})" for t in plan["body"]["tasks"])
            console.print(f"demo: L05 planned it from a template: {steps}, signed {plan['signature'][:24]}...")
            shown_plan = True
        if goal["status"] not in ("submitted", "planned", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
        goal = api.get(f"/v1/goals/{goal['goal_id']}")
    if goal["status"] != "completed" or not goal.get("run_id"):
        console.print(f"[yellow]demo: the goal did not complete ({goal['status']}): {goal.get('reasons')}[/yellow]")
        return
    run = api.get(f"/v1/runs/{goal['run_id']}")
    tasks = {t["task_id"]: t for t in run["tasks"]}
    took = (between(run["started_at"], run["finished_at"]) or 0) * 1000
    console.print(
        f"demo: L08 approved the plan and L02 ran it: {run['tasks_done']}/{run['task_count']} tasks completed in "
        f"{took:.0f} ms; the text has [bold]{tasks['words']['output']['result']}[/bold] words (run {run['run_id']})"
    )


def _await_archived(api: ApiClient, agent_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = api.get("/v1/events", detail_type="AgentCreated", limit=50)
        if any(item["detail"].get("agent_id") == agent_id for item in page["items"]):
            console.print("demo: its AgentCreated event crossed the bus and is in L01's event log")
            return
        time.sleep(0.2)
    console.print("[yellow]demo: the AgentCreated event did not reach the event log within 20 s[/yellow]")


def _ask_a_model(api: ApiClient) -> None:
    schema = {"type": "object", "properties": {"motto": {"type": "string", "maxLength": 60}}, "required": ["motto"]}
    body = {
        "requirements": {"capabilities": ["json"]},
        "strategy": "cheapest",
        "messages": [{"role": "user", "content": "Write a short motto for a research agent."}],
        "response_schema": schema,
        "max_tokens": 40,
        "purpose": "demo",
    }
    try:
        answer = api.post("/v1/models/chat", body)
    except ApiError as exc:
        console.print(f"[yellow]demo: no model answered ({exc.status}): {exc.detail}[/yellow]")
        return
    usage = answer["usage"]
    console.print(
        f"demo: {answer['model']} ({answer['provider']}) answered {answer['content']} "
        f"in {answer['latency_ms']:.0f} ms, {usage['input_tokens']}+{usage['output_tokens']} tokens, "
        f"{answer['cost_micro_usd']} micro-USD, metered"
    )


def dev(
    port: Annotated[int, typer.Option(help="Port of the HTTP API on 127.0.0.1 (0: any free port).")] = 8080,
    demo: Annotated[bool, typer.Option(help="Carry the demo through the platform once it is up.")] = True,
    ready_file: Annotated[Path | None, typer.Option(help="Write the URLs and dev key here when ready.")] = None,
    retry_base_delay: Annotated[float, typer.Option(help="Seconds before an event's first retry.")] = 1.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start the local cloud (functions, HTTP API, events, Postgres, Redis, AWS emulator) and keep it up."""
    from strata_cli.localcloud.cloud import LocalCloud, LocalCloudConfig

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s %(message)s")
    root = project_root()
    cloud = LocalCloud(LocalCloudConfig(root=root, port=port, retry_base_delay_s=retry_base_delay))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal() -> None:  # before the cloud is up, cancel the start; after, leave the wait
            if stop.is_set() or not ready.is_set():
                task.cancel()
            stop.set()

        ready = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        started = time.monotonic()
        try:
            await cloud.start()
            key = await cloud.bootstrap_key("dev")
            session: dict[str, Any] = {
                "api_url": cloud.front_url,
                "lambda_url": cloud.lambda_url,
                "api_key": key["api_key"],
                "tenant_id": key["tenant_id"],
                **cloud.stats()["services"],
            }
            session_file(root).parent.mkdir(parents=True, exist_ok=True)
            session_file(root).write_text(json.dumps(session, indent=2))
            session_file(root).chmod(0o600)  # it holds an admin key
            console.print(f"[green]Strata local cloud up in {time.monotonic() - started:.1f} s[/green]")
            console.print(f"  API      {cloud.front_url}    console  {cloud.front_url}/console/")
            console.print(f"  Lambda   {cloud.lambda_url}   (AWS_ENDPOINT_URL_LAMBDA for boto3)")
            for line in cloud.services.embedded:
                console.print(f"  embedded {line}")
            console.print(f"  dev API key (tenant dev): [bold]{key['api_key']}[/bold]")
            if ready_file:
                ready_file.write_text(json.dumps(session))
            ready.set()
            if demo:
                await asyncio.to_thread(run_demo, cloud.front_url, key["api_key"])
            console.print("Press Ctrl-C to stop.")
            await stop.wait()
        finally:
            await cloud.stop()

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())
