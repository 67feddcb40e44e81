"""Runs: list them, show one with its tasks (and a task's steps), pause, resume or cancel one, retry a failed task."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from strata_cli.client import ApiClient, ApiKeyOption, ApiOption, connect
from strata_cli.display import (
    between,
    compact,
    console,
    duration,
    local_time,
    print_json,
    print_table,
    table,
    tokens,
    usd,
)

run_app = typer.Typer(help="Show and control one run.", no_args_is_help=True)

FINISHED = ("completed", "failed", "cancelled")
STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "paused": "yellow",
    "blocked": "red",
    "running": "cyan",
    "awaiting_approval": "magenta",
}


class RunStatus(StrEnum):
    running = "running"
    paused = "paused"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def attempts(task: dict[str, Any]) -> str:
    """The attempt of the attempts allowed (an operator's retry allows max_attempts more)."""
    return f"{task['attempt']}/{task.get('attempt_base', 0) + task['max_attempts']}"


def task_error(task: dict[str, Any]) -> str:
    error = task.get("error") or {}
    return str(error.get("message") or (compact(error, 120) if error else ""))


def list_runs(
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs at most (newest first).")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """List runs, newest first."""
    with connect(api, key) as client:
        wanted = status.value if status else None
        found = client.first("/v1/runs", limit, status=wanted)
    if json_output:
        print_json(found)
        return
    shown = table(
        f"Runs{f' ({wanted})' if wanted else ''}",
        "Run ID",
        "Status",
        "Tasks",
        "Plan",
        "Goal ID",
        "Created",
        "Updated",
        "Error",
    )
    for run in found:
        shown.add_row(
            run["run_id"],
            styled(run["status"]),
            f"{run['tasks_done']}/{run['task_count']}",
            f"v{run['plan_version']}",
            run.get("goal_id") or "—",
            local_time(run["created_at"]),
            local_time(run["updated_at"]),
            run.get("error") or "",
        )
    if not found:
        console.print("no runs" + (f" {wanted}" if wanted else ""))
        return
    print_table(shown)


def print_run(run: dict[str, Any]) -> None:
    """A run's header and a table of its tasks."""
    took = between(run["started_at"], run.get("finished_at"))
    console.print(
        f"[bold]Run {run['run_id']}[/bold]: {styled(run['status'])}, {run['tasks_done']}/{run['task_count']} "
        f"tasks, {duration(took)}{'' if run.get('finished_at') else ' so far'}"
    )
    console.print(f"  goal {run.get('goal_id') or '—'}, plan {run['plan_id']} v{run['plan_version']}")
    console.print(f"  tokens {tokens(run['input_tokens'], run['output_tokens'])}, cost {usd(run['cost_micro_usd'])}")
    console.print(f"  started {local_time(run['started_at'])}, finished {local_time(run.get('finished_at'))}")
    if run.get("error"):
        console.print(f"  error: {run['error']}", style="red", markup=False)
    shown = table(None, "Task", "Status", "Attempt", "Tokens", "Cost", "Duration", "Error")
    for task in run["tasks"]:
        started = task.get("first_started_at") or task.get("started_at")
        shown.add_row(
            task["task_id"],
            styled(task["status"]) + (f" ({task['approval_id']})" if task.get("approval_id") else ""),
            attempts(task),
            f"{task['input_tokens'] + task['output_tokens']:,}",
            usd(task["cost_micro_usd"]),
            duration(between(started, task.get("finished_at"))) if started else "—",
            task_error(task),
        )
    print_table(shown)


def print_steps(client: ApiClient, run_id: str, task_id: str, json_output: bool) -> None:
    steps = list(client.pages(f"/v1/runs/{run_id}/tasks/{task_id}/steps", page_size=200))
    if json_output:
        print_json(steps)
        return
    shown = table(
        f"Steps of task {task_id} in run {run_id}", "Attempt", "Step", "Kind", "Tokens", "Cost", "Duration", "Detail"
    )
    for step in steps:
        shown.add_row(
            str(step["attempt"]),
            str(step["step"]),
            step["kind"],
            f"{step['input_tokens'] + step['output_tokens']:,}",
            usd(step["cost_micro_usd"]),
            duration(step["duration_ms"] / 1000),
            compact(step["detail"], 160),
        )
    print_table(shown)
    if not steps:
        console.print(f"task {task_id} has no steps yet")


@run_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    steps: Annotated[str | None, typer.Option("--steps", metavar="TASK_ID", help="List this task's steps.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the run (or the steps) as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """A run with every task: status, attempt, tokens, cost, duration, error."""
    with connect(api, key) as client:
        if steps is not None:
            print_steps(client, run_id, steps, json_output)
            return
        run = client.get(f"/v1/runs/{run_id}")
    if json_output:
        print_json(run)
    else:
        print_run(run)


Reason = Annotated[str, typer.Option(help="Why (kept with the run).")]


def _control(action: str, run_id: str, reason: str, api: str | None, key: str | None) -> None:
    with connect(api, key) as client:
        run = client.post(f"/v1/runs/{run_id}/{action}", {"reason": reason})
    console.print(f"run {run['run_id']}: {styled(run['status'])} ({run['tasks_done']}/{run['task_count']} tasks done)")


@run_app.command("pause")
def pause_run(run_id: str, reason: Reason = "", api: ApiOption = None, key: ApiKeyOption = None) -> None:
    """Pause a run: running tasks stop at their next step; nothing new starts until it is resumed."""
    _control("pause", run_id, reason, api, key)


@run_app.command("resume")
def resume_run(run_id: str, reason: Reason = "", api: ApiOption = None, key: ApiKeyOption = None) -> None:
    """Resume a paused run from every task's last checkpoint."""
    _control("resume", run_id, reason, api, key)


@run_app.command("cancel")
def cancel_run(run_id: str, reason: Reason = "", api: ApiOption = None, key: ApiKeyOption = None) -> None:
    """Cancel a run: running tasks stop at their next step and the run ends as cancelled."""
    _control("cancel", run_id, reason, api, key)


@run_app.command("retry")
def retry_task(run_id: str, task_id: str, reason: Reason = "", api: ApiOption = None, key: ApiKeyOption = None) -> None:
    """Retry a failed task of a run (and what it blocked); refused (409) when the task has not failed."""
    with connect(api, key) as client:
        run = client.post(f"/v1/runs/{run_id}/tasks/{task_id}/retry", {"reason": reason})
    task = next((t for t in run["tasks"] if t["task_id"] == task_id), None)
    state = f"task {task_id} is {styled(task['status'])} (attempt {attempts(task)}); " if task else ""
    console.print(f"{state}run {run['run_id']}: {styled(run['status'])}")
