"""The `strata` command: run the local cloud, see the platform's status, migrate the schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from strata_cli.openapi import openapi_command

app = typer.Typer(
    help="Strata: an AI-agent platform that runs serverless on AWS, and locally without Docker.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)


def project_root() -> Path:
    """The folder holding template.yaml: from STRATA_ROOT, the working directory or this package's checkout."""
    candidates = [Path(os.environ["STRATA_ROOT"])] if "STRATA_ROOT" in os.environ else []
    candidates += [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]]
    for folder in candidates:
        if (folder / "template.yaml").is_file() and (folder / "shared" / "strata").is_dir():
            return folder
    raise typer.BadParameter("no Strata checkout found (template.yaml); run from the project or set STRATA_ROOT")


def session_file(root: Path) -> Path:
    return root / ".strata" / "dev.json"


def _api(url: str, path: str, key: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, headers=headers, method="POST" if data else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback or the user's API
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def run_demo(api_url: str, key: str) -> None:
    """What the platform can carry end to end today: register an agent, see its event archived by L01, ask a
    model (routed by L04 to the cheapest that can answer in JSON; the embedded model by default), and submit a
    goal that L05 plans from a template into a signed task graph, L08 approves and L02 runs to completion."""
    name = f"demo-agent-{int(time.time())}"
    status, agent = _api(api_url, "/v1/agents", key, {"name": name, "capabilities": ["search", "summarise"]})
    if status != 201:
        console.print(f"[red]demo: creating an agent answered {status}: {agent}[/red]")
        return
    console.print(f"demo: registered agent [bold]{name}[/bold] ({agent['did']})")
    _await_archived(api_url, key, agent["agent_id"])
    _ask_a_model(api_url, key)
    _run_a_goal(api_url, key)


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


def _run_a_goal(api_url: str, key: str) -> None:
    status, made = _api(api_url, "/v1/plan-templates", key, DEMO_TEMPLATE)
    if status not in (201, 409):  # 409: a previous demo made it
        console.print(f"[yellow]demo: creating a plan template answered {status}: {made}[/yellow]")
        return
    text = "Count the words of 'Strata plans goals into signed task graphs'"
    status, goal = _api(api_url, "/v1/goals", key, {"text": text, "strategy": "template"})
    if status != 202:
        console.print(f"[yellow]demo: submitting a goal answered {status}: {goal}[/yellow]")
        return
    console.print(f"demo: submitted the goal [bold]{text}[/bold]")
    deadline = time.monotonic() + 60
    shown_plan = False
    while True:
        if goal.get("plan_id") and not shown_plan:  # (a fast run may be done by the first look that sees it)
            _, plan = _api(api_url, f"/v1/plans/{goal['plan_id']}", key)
            steps = " -> ".join(f"{t['task_id']} ({t['tool']})" for t in plan["body"]["tasks"])
            console.print(f"demo: L05 planned it from a template: {steps}, signed {plan['signature'][:24]}...")
            shown_plan = True
        if goal["status"] not in ("submitted", "planned", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
        _, goal = _api(api_url, f"/v1/goals/{goal['goal_id']}", key)
    if goal["status"] != "completed" or not goal.get("run_id"):
        console.print(f"[yellow]demo: the goal did not complete ({goal['status']}): {goal.get('reasons')}[/yellow]")
        return
    _, run = _api(api_url, f"/v1/runs/{goal['run_id']}", key)
    tasks = {t["task_id"]: t for t in run["tasks"]}
    took = (_when(run["finished_at"]) - _when(run["started_at"])) * 1000
    console.print(
        f"demo: L08 approved the plan and L02 ran it: {run['tasks_done']}/{run['task_count']} tasks completed in "
        f"{took:.0f} ms; the text has [bold]{tasks['words']['output']['result']}[/bold] words (run {run['run_id']})"
    )


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _await_archived(api_url: str, key: str, agent_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, page = _api(api_url, "/v1/events?detail_type=AgentCreated&limit=50", key)
        if any(item["detail"].get("agent_id") == agent_id for item in (page or {}).get("items", [])):
            console.print("demo: its AgentCreated event crossed the bus and is in L01's event log")
            return
        time.sleep(0.2)
    console.print("[yellow]demo: the AgentCreated event did not reach the event log within 20 s[/yellow]")


def _ask_a_model(api_url: str, key: str) -> None:
    schema = {"type": "object", "properties": {"motto": {"type": "string", "maxLength": 60}}, "required": ["motto"]}
    body = {
        "requirements": {"capabilities": ["json"]},
        "strategy": "cheapest",
        "messages": [{"role": "user", "content": "Write a short motto for a research agent."}],
        "response_schema": schema,
        "max_tokens": 40,
        "purpose": "demo",
    }
    status, answer = _api(api_url, "/v1/models/chat", key, body)
    if status != 200:
        detail = (answer or {}).get("detail", answer)
        console.print(f"[yellow]demo: no model answered ({status}): {detail}[/yellow]")
        return
    usage = answer["usage"]
    console.print(
        f"demo: {answer['model']} ({answer['provider']}) answered {answer['content']} "
        f"in {answer['latency_ms']:.0f} ms, {usage['input_tokens']}+{usage['output_tokens']} tokens, "
        f"{answer['cost_micro_usd']} micro-USD, metered"
    )


@app.command()
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
            session = {
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


def credentials(url: str | None, key: str | None) -> tuple[str, str]:
    """The API URL and key: as given, else the running local cloud's (from `strata dev`'s session file)."""
    if url is None or key is None:
        path = session_file(project_root())
        if not path.is_file():
            console.print("[red]no running local cloud found: start `strata dev` or pass --url and --key[/red]")
            raise typer.Exit(2)
        session = json.loads(path.read_text())
        url, key = url or session["api_url"], key or session["api_key"]
    return url, key


@app.command()
def status(
    url: Annotated[str | None, typer.Option(envvar="STRATA_API_URL", help="API base URL.")] = None,
    key: Annotated[str | None, typer.Option(envvar="STRATA_API_KEY", help="API key.")] = None,
) -> None:
    """Every layer and its dependencies, as the running platform reports them."""
    url, key = credentials(url, key)
    try:
        code, body = _api(url, "/v1/status", key)
    except (urllib.error.URLError, OSError) as exc:
        console.print(f"[red]{url} is not answering: {exc}[/red]")
        raise typer.Exit(1) from exc
    if code != 200:
        console.print(f"[red]/v1/status answered {code}: {body}[/red]")
        raise typer.Exit(1)
    table = Table(title=f"Strata at {url}: {body['status']}")
    for column in ("Layer", "Status", "Latency", "Postgres", "Redis", "Event bus"):
        table.add_column(column)
    for layer in body["layers"]:
        deps = layer.get("dependencies", {})
        mark = {"ok": "[green]ok[/green]"}
        table.add_row(
            f"{layer['number']} {layer['layer']}",
            mark.get(layer["status"], f"[red]{layer['status']}[/red]"),
            f"{layer.get('latency_ms', '—')} ms",
            *(
                mark.get(deps.get(d, {}).get("status", "—"), deps.get(d, {}).get("status", "—"))
                for d in ("postgres", "redis", "event_bus")
            ),
        )
    console.print(table)
    raise typer.Exit(0 if body["status"] == "ok" else 1)


@app.command()
def migrate(
    database_url: Annotated[str | None, typer.Option(envvar="DATABASE_URL", help="Postgres URL.")] = None,
) -> None:
    """Apply pending schema migrations (forward-only, recorded, safe to run twice)."""
    root = project_root()
    if database_url is None:
        path = session_file(root)
        if not path.is_file():
            console.print("[red]set DATABASE_URL or start `strata dev` first[/red]")
            raise typer.Exit(2)
        database_url = json.loads(path.read_text())["database_url"]
    sys.path.insert(0, str(root / "shared"))
    import asyncpg

    from strata.migrations import apply_migrations

    async def run() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            return await apply_migrations(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    console.print(f"applied: {', '.join(applied)}" if applied else "the schema is up to date")


@app.command("event-schemas")
def event_schemas(
    out: Annotated[Path | None, typer.Option(help="Write <DetailType>.json files here instead of printing.")] = None,
) -> None:
    """Export the JSON Schema of every event contract (the registry in shared/strata/events)."""
    sys.path.insert(0, str(project_root() / "shared"))
    from strata.events import EVENT_TYPES

    schemas = {name: EVENT_TYPES[name].model_json_schema() for name in sorted(EVENT_TYPES)}
    if out is None:
        console.print_json(data=schemas)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas.items():
        (out / f"{name}.json").write_text(json.dumps(schema, indent=2) + "\n")
    console.print(f"wrote {len(schemas)} schemas to {out}")


app.command("openapi")(openapi_command)


@app.command("eval-gate")
def eval_gate(
    dataset: Annotated[str, typer.Option(help="The evaluation dataset's id.")],
    agent: Annotated[str, typer.Option(help="The agent's id (run at the version it has now).")],
    baseline: Annotated[str, typer.Option(help="A regression run's id, auto (the last passing one) or none.")] = "auto",
    max_drop: Annotated[float, typer.Option(help="How far the score may fall below the baseline's.")] = 0.05,
    min_score: Annotated[float | None, typer.Option(help="A floor the score must reach.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 3600,
    url: Annotated[str | None, typer.Option(envvar="STRATA_API_URL", help="API base URL.")] = None,
    key: Annotated[str | None, typer.Option(envvar="STRATA_API_KEY", help="API key.")] = None,
) -> None:
    """Run an agent over an evaluation dataset and gate on the result: exit 0 when the gate passes, 1 when not."""
    url, key = credentials(url, key)
    body: dict[str, Any] = {"dataset_id": dataset, "agent_id": agent, "baseline": baseline, "max_drop": max_drop,
                            "timeout_s": int(min(max(timeout, 10), 86_400))}  # fmt: skip
    if min_score is not None:
        body["min_score"] = min_score
    code, started = _api(url, "/v1/eval-runs", key, body)
    if code != 202:
        console.print(f"[red]the regression run was refused ({code}): {(started or {}).get('detail', started)}[/red]")
        raise typer.Exit(2)
    run_id = started["eval_run_id"]
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = started
    with console.status(f"regression run {run_id}") as shown:
        while run["status"] != "completed":
            if time.monotonic() > deadline:
                console.print(f"[red]regression run {run_id} did not finish in {timeout:.0f} s[/red]")
                raise typer.Exit(1)
            time.sleep(1)
            code, run = _api(url, f"/v1/eval-runs/{run_id}", key)
            if code != 200:
                console.print(f"[red]reading the regression run answered {code}: {run}[/red]")
                raise typer.Exit(2)
            shown.update(f"regression run {run_id}: {run['cases_done']}/{run['cases_total']} cases")
    table = Table(title=f"Regression run {run_id} of agent v{run['agent_version']}")
    for column in ("Case", "Status", "Score", "Baseline", "Change"):
        table.add_column(column)
    for case in run["cases"]:
        table.add_row(
            case["case_id"],
            case["status"],
            f"{case['score']:.3f}" if case["score"] is not None else "—",
            f"{case['baseline_score']:.3f}" if case["baseline_score"] is not None else "—",
            case["change"] or "—",
        )
    console.print(table)
    delta = f", {run['delta']:+.3f} against the baseline" if run["delta"] is not None else ""
    console.print(f"score {run['score']:.3f}, pass rate {run['pass_rate']:.0%}{delta}")
    for reason in run["gate_reasons"]:
        console.print(f"[red]- {reason}[/red]")
    passed = run["gate"] == "passed"
    console.print("[green]gate passed[/green]" if passed else "[red]gate failed[/red]")
    raise typer.Exit(0 if passed else 1)
