"""Goals: submit one, and follow it (planning, a human's approval, its run's tasks) to its end with a summary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from strata_cli.client import FAILED, ApiClient, ApiError, ApiKeyOption, ApiOption, connect, fail
from strata_cli.commands.runs import FINISHED, attempts, styled, task_error
from strata_cli.display import (
    between,
    compact,
    console,
    duration,
    errors,
    local_time,
    parse_moment,
    print_json,
    tokens,
    usd,
)

GOAL_ENDS = ("completed", "failed", "cancelled", "rejected")
INTERRUPTED = 130  # the shell's code for Ctrl-C


class Strategy(StrEnum):
    auto = "auto"
    template = "template"
    model = "model"


# The CLI's names for L05's strategies: auto is a matching template, else the model (hybrid).
STRATEGIES = {Strategy.auto: "hybrid", Strategy.template: "template", Strategy.model: "llm"}


class OnFailure(StrEnum):
    fail = "fail"
    replan = "replan"


CONSTRAINT_ALIASES = {
    "max_cost_usd": "budget_micro_usd",
    "allowed_tool": "allowed_tools",
    "budget_usd": "budget_micro_usd",
}


def _constraint(pair: str) -> tuple[str, Any]:
    name, equals, raw = pair.partition("=")
    name = name.strip().replace("-", "_")
    if not equals or not name:
        raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--constraint")
    key = CONSTRAINT_ALIASES.get(name, name)
    if key == "deadline":
        return key, parse_moment(raw, option="--constraint", future=True).isoformat()
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw  # a plain word: the API says whether it fits
    if name in ("max_cost_usd", "budget_usd") and isinstance(value, int | float):
        value = round(value * 1_000_000)
    if key == "allowed_tools" and isinstance(value, str):
        value = [tool.strip() for tool in value.split(",") if tool.strip()]
    return key, value


def goal_constraints(
    pairs: list[str],
    max_cost_usd: float | None,
    deadline: str | None,
    max_parallelism: int | None,
    allowed_tools: list[str],
    require_approval: bool | None,
    on_failure: OnFailure | None,
    max_replans: int | None,
) -> dict[str, Any]:
    """The goal's constraints: the `--constraint key=value` pairs (values read as JSON when they are), then the
    specific options over them."""
    constraints = dict(_constraint(pair) for pair in pairs)
    if max_cost_usd is not None:
        constraints["budget_micro_usd"] = round(max_cost_usd * 1_000_000)
    if deadline is not None:
        constraints["deadline"] = parse_moment(deadline, option="--deadline", future=True).isoformat()
    if max_parallelism is not None:
        constraints["max_parallelism"] = max_parallelism
    if allowed_tools:
        constraints["allowed_tools"] = [*constraints.get("allowed_tools", []), *allowed_tools]
    if require_approval is not None:
        constraints["require_approval"] = require_approval
    if on_failure is not None:
        constraints["on_failure"] = on_failure.value
    if max_replans is not None:
        constraints["max_replans"] = max_replans
    return constraints


@dataclass
class GoalFollower:
    """Reads a goal, then its run (conditionally: unchanged runs answer 304), until the goal ends; says what
    happens on the way (planned, waiting for an approval, the run started, a task failed)."""

    client: ApiClient
    goal: dict[str, Any]
    say: Callable[[str], None]
    run: dict[str, Any] | None = None
    run_etag: str | None = None
    plan_approval: dict[str, Any] | None = None
    approvals_readable: bool = True
    next_approval_look: float = 0.0
    told: set[str] = field(default_factory=set)

    @property
    def ended(self) -> bool:
        return self.goal["status"] in GOAL_ENDS

    def poll(self) -> None:
        run_id = self.goal.get("run_id")
        run_open = self.run is not None and self.run["run_id"] == run_id and self.run["status"] not in FINISHED
        if run_id and (self.run is None or self.run["run_id"] != run_id or run_open):
            self._read_run(run_id)
            if self.run is not None and self.run["status"] in FINISHED:
                self._read_goal()  # the goal ends with its run (or is planned again)
        else:
            self._read_goal()
        if (
            self.ended
            and self.goal.get("run_id")
            and (self.run is None or self.run["run_id"] != self.goal["run_id"] or self.run["status"] not in FINISHED)
        ):
            self._read_run(self.goal["run_id"])  # the final state of a run that ended between two looks
        if self.goal["status"] == "planned" and not self.goal.get("run_id"):
            self._look_for_plan_approval()

    def _read_goal(self) -> None:
        before = self.goal
        self.goal = self.client.get(f"/v1/goals/{before['goal_id']}")
        plan_id = self.goal.get("plan_id")
        if plan_id != before.get("plan_id"):
            self.plan_approval = None  # a new plan (a replan) waits for its own approval, if any
        if plan_id:
            self._tell(f"plan:{plan_id}", f"planned: plan {plan_id}")

    def _read_run(self, run_id: str) -> None:
        etag = self.run_etag if self.run is not None and self.run["run_id"] == run_id else None
        run, self.run_etag = self.client.get_if_changed(f"/v1/runs/{run_id}", etag)
        if run is None:
            return  # 304: as it was
        self.run = run
        self._tell(f"run:{run_id}", f"run {run_id} started: {run['task_count']} tasks")
        for task in run["tasks"]:
            if task["status"] == "awaiting_approval" and task.get("approval_id"):
                self._tell(
                    f"approval:{task['approval_id']}",
                    f"task {task['task_id']} is waiting for approval {task['approval_id']}",
                )
            elif task["status"] == "failed":
                self._tell(
                    f"failed:{task['task_id']}:{task['attempt']}",
                    f"task {task['task_id']} failed (attempt {attempts(task)}): {task_error(task)}",
                )

    def _look_for_plan_approval(self) -> None:
        """A plan some policy (or the goal) sends to a human: name the approval it waits for."""
        if not self.approvals_readable or self.plan_approval is not None or time.monotonic() < self.next_approval_look:
            return
        self.next_approval_look = time.monotonic() + 1.0
        try:
            page = self.client.get("/v1/approvals", status="pending", subject_type="plan", limit=100)
        except ApiError as exc:
            if exc.status in (401, 403):  # the key may not read approvals: the goal just looks planned
                self.approvals_readable = False
                return
            raise
        plan_id = self.goal.get("plan_id")
        found = next((a for a in page["items"] if a["subject_id"] == plan_id), None)
        if found is not None:
            self.plan_approval = found
            approvers = ", ".join(found["approvers"]).replace("*", "anyone with approvals:decide")
            self._tell(
                f"approval:{found['approval_id']}",
                f"waiting for approval {found['approval_id']}: {found['why']} (approvers: {approvers}; "
                f"until {local_time(found['deadline'])})",
            )

    def _tell(self, topic: str, text: str) -> None:
        if topic not in self.told:
            self.told.add(topic)
            self.say(text)

    def description(self) -> str:
        status = self.goal["status"]
        if self.run is not None and self.run["status"] not in FINISHED:
            waiting = [
                f"{t['task_id']} (approval {t['approval_id']})"
                for t in self.run["tasks"]
                if t["status"] == "awaiting_approval"
            ]
            running = [t["task_id"] for t in self.run["tasks"] if t["status"] == "running"]
            if self.run["status"] == "paused":
                return "run paused"
            if waiting:
                return escape(f"waiting for approval: {', '.join(waiting)}")
            return escape(f"running {', '.join(running)}") if running else "run started"
        if status == "submitted":
            return "planning"
        if status == "planned" and self.plan_approval is not None:
            return escape(f"waiting for approval {self.plan_approval['approval_id']}")
        if status == "planned":
            return "planned: waiting for supervision and the run"
        return escape(status)


def follow(client: ApiClient, goal: dict[str, Any], timeout_s: float, shown_on: Console) -> tuple[GoalFollower, bool]:
    """Follow the goal with a live progress bar until it ends or `timeout_s` passes; (the follower, timed out)."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=shown_on, transient=False) as progress:
        follower = GoalFollower(client, goal, say=lambda text: progress.console.print(text, markup=False))
        bar = progress.add_task("planning", total=None)
        started = time.monotonic()
        while True:
            follower.poll()
            run = follower.run
            if run is not None:
                progress.update(bar, total=run["task_count"], completed=run["tasks_done"])
            progress.update(bar, description=follower.description())
            if follower.ended:
                return follower, False
            elapsed = time.monotonic() - started
            if elapsed > timeout_s:
                return follower, True
            time.sleep(min(2.0, 0.25 + elapsed / 40))  # quick at first; a long run is looked at every 2 s


def sink_tasks(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The tasks no other task depends on: the run's results."""
    needed = {dependency for task in run["tasks"] for dependency in task["depends_on"]}
    return [task for task in run["tasks"] if task["task_id"] not in needed]


def print_summary(goal: dict[str, Any], run: dict[str, Any] | None) -> None:
    console.print(f"[bold]goal {goal['goal_id']}[/bold]: {styled(goal['status'])}")
    if run is not None:
        took = between(run["started_at"], run.get("finished_at"))
        console.print(
            f"  run {run['run_id']}: {styled(run['status'])}, {run['tasks_done']}/{run['task_count']} tasks "
            f"in {duration(took)}"
        )
        console.print(
            f"  tokens {tokens(run['input_tokens'], run['output_tokens'])}, cost {usd(run['cost_micro_usd'])}"
        )
        if run["status"] == "completed":
            console.print("  outputs:")
            for task in sink_tasks(run):
                console.print(f"    {task['task_id']}: {compact(task['output'], 2000)}", markup=False, highlight=False)
        else:
            if run.get("error"):
                console.print(f"  reason: {run['error']}", style="red", markup=False)
            for task in run["tasks"]:
                if task["status"] == "failed":
                    console.print(
                        f"    {task['task_id']} (attempt {attempts(task)}): {task_error(task)}",
                        style="red",
                        markup=False,
                    )
    if goal["status"] in ("rejected", "failed") and goal.get("reasons") and (run is None or not run.get("error")):
        for reason in goal["reasons"]:
            console.print(f"  reason: {reason}", style="red", markup=False)


def submit_goal(
    text: Annotated[str, typer.Argument(help="What to achieve, in words.")],
    strategy: Annotated[Strategy, typer.Option(help="auto: a matching template, else the model.")] = Strategy.auto,
    constraint: Annotated[
        list[str] | None,
        typer.Option(
            "--constraint", "-c", metavar="KEY=VALUE", help="A goal constraint (values read as JSON); repeat."
        ),
    ] = None,
    max_cost_usd: Annotated[float | None, typer.Option(min=0, help="The goal's budget in USD.")] = None,
    deadline: Annotated[str | None, typer.Option(help="ISO 8601 time, or a duration from now: 30m, 2h.")] = None,
    max_parallelism: Annotated[int | None, typer.Option(min=1, help="Tasks running at once, at most.")] = None,
    allowed_tool: Annotated[list[str] | None, typer.Option(help="A tool the plan may use; repeat.")] = None,
    require_approval: Annotated[
        bool | None, typer.Option("--require-approval/--no-require-approval", help="A human approves the plan.")
    ] = None,
    on_failure: Annotated[OnFailure | None, typer.Option(help="When a task fails for good.")] = None,
    max_replans: Annotated[int | None, typer.Option(min=0, help="With --on-failure replan: new plans at most.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the goal and its run to the end.")] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds --wait waits.")] = 600,
    json_output: Annotated[bool, typer.Option("--json", help="Print the goal (and run) as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Submit a goal; with --wait follow it to its end: exit 0 when it completed, 1 when not."""
    constraints = goal_constraints(
        constraint or [],
        max_cost_usd,
        deadline,
        max_parallelism,
        allowed_tool or [],
        require_approval,
        on_failure,
        max_replans,
    )
    body: dict[str, Any] = {"text": text, "strategy": STRATEGIES[strategy]}
    if constraints:
        body["constraints"] = constraints
    shown_on = errors if json_output else console  # with --json, stdout holds only the JSON
    with connect(api, key) as client:
        goal = client.post("/v1/goals", body)
        shown_on.print(f"goal {goal['goal_id']} submitted", markup=False, highlight=False)
        if not wait:
            if json_output:
                print_json(goal)
            return
        try:
            follower, timed_out = follow(client, goal, timeout, shown_on)
        except KeyboardInterrupt:
            fail(f"stopped following; goal {goal['goal_id']} goes on (strata run show, strata runs)", INTERRUPTED)
    if json_output:
        print_json({"goal": follower.goal, "run": follower.run})
    else:
        print_summary(follower.goal, follower.run)
    if timed_out:
        fail(f"goal {goal['goal_id']} did not end within {timeout:.0f} s: it is {follower.goal['status']}", FAILED)
    if follower.goal["status"] != "completed":
        raise typer.Exit(FAILED)
