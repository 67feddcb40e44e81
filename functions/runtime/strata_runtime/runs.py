"""Runs and their tasks in Postgres: every change of state is one transaction that also writes its events to the
outbox, so a run moves exactly once however often an event arrives or an invocation dies.

Task states: `pending` (dependencies not done) -> `queued` (input bound, waiting for a parallelism slot) ->
`ready` (its TaskReady/TaskContinued sent) -> `running` (an invocation holds its lease) -> `completed` | `failed`,
or `blocked` (a dependency failed) / `cancelled`. A failed attempt that may be retried goes back to `ready` with the
next attempt number and a backoff (`not_before`). A run is `running`, `paused`, `completed`, `failed` or
`cancelled`; completion of a task readies its dependents in the same transaction that records it. An operator's retry
of a failed run's failed task reopens the run: `failed` -> `running`, the task attempted again, the tasks its failure
blocked or cancelled `pending` again."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import db, peers
from strata.errors import ConflictError, NotFoundError
from strata.events.envelope import Event
from strata.events.outbox import UnitOfWork, unit_of_work
from strata.events.runtime import (
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunReopened,
    RunStarted,
    TaskCompleted,
    TaskContinued,
    TaskFailed,
    TaskReady,
)
from strata.pagination import PageRequest, Where, fetch_page
from strata.plans import PlanBody, resolve_input
from strata_runtime.settings import runtime_settings

if TYPE_CHECKING:  # asyncpg is imported when the pool is built, keeping it out of the cold start
    import asyncpg

logger = Logger(child=True)
E = TypeVar("E", bound=Event)

RUN_COLUMNS = (
    "run_id, plan_id, goal_id, plan_version, status, max_parallelism, deadline, allowed_tools, task_count,"
    " tasks_done, error, requested_by, input_tokens, output_tokens, cost_micro_usd, started_at, finished_at,"
    " created_at, updated_at, submitted_by"
)
RUN_COLUMN_NAMES = tuple(c.strip() for c in RUN_COLUMNS.split(","))
TASK_COLUMNS = (
    "task_id, definition, depends_on, waiting_on, status, attempt, attempt_base, next_step, input, output, error,"
    " not_before, dispatched_at, lease_until, invocations, input_tokens, output_tokens, cost_micro_usd, model_ms,"
    " tool_ms, first_started_at, started_at, finished_at, approval_id"
)
# a task as the API shows it: its row and how many steps it has recorded
TASK_VIEW = (
    f"SELECT {TASK_COLUMNS}, (SELECT count(*) FROM task_steps s WHERE s.run_id = t.run_id "  # noqa: S608
    "AND s.task_id = t.task_id) AS steps FROM task_executions t"
)
TERMINAL_RUN = ("completed", "failed", "cancelled")
SUSPENDED_BY = "supervision: suspended"  # who paused a run for the kill switch (lifting it resumes such runs)
UNSIGNED = "the plan's signature does not verify: it changed after planning signed it"
ATTEMPT_LIMIT = 100  # the most attempts a task may make: the bound the task events' contracts put on `attempt`


# ---- starting ------------------------------------------------------------------------------------------------------


async def start(
    *,
    run_id: UUID,
    tenant_id: UUID,
    correlation_id: str,
    causation_id: str,
    plan: dict[str, Any],
    body: PlanBody,
    constraints: dict[str, Any],
    signature_ok: bool,
    submitted_by: str = "",
) -> UUID | None:
    """Create the run of an approved plan and ready its root tasks; None when the plan already has its run."""
    deadline = constraints.get("deadline")
    async with unit_of_work(tenant_id) as uow:
        created = await uow.conn.fetchval(
            """INSERT INTO runs (run_id, tenant_id, plan_id, goal_id, plan_version, signature, status, max_parallelism,
                                 deadline, allowed_tools, task_count, error, submitted_by, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now())
               ON CONFLICT (tenant_id, plan_id) DO NOTHING RETURNING true""",
            run_id,
            tenant_id,
            plan["plan_id"],
            plan["goal_id"],
            plan["version"],
            plan["signature"],
            "running" if signature_ok else "failed",
            constraints.get("max_parallelism"),
            datetime.fromisoformat(deadline) if isinstance(deadline, str) else deadline,
            constraints.get("allowed_tools"),
            len(body.tasks),
            None if signature_ok else UNSIGNED,
            submitted_by[:200],
        )
        if not created:
            return None
        await uow.conn.executemany(
            """INSERT INTO task_executions (tenant_id, run_id, task_id, definition, depends_on, waiting_on, status)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            [
                (
                    tenant_id,
                    run_id,
                    t.task_id,
                    t.model_dump(mode="json"),
                    list(t.depends_on),
                    len(set(t.depends_on)),
                    ("queued" if not t.depends_on else "pending") if signature_ok else "cancelled",
                )
                for t in body.tasks
            ],
        )
        run = _Run(uow, tenant_id, run_id, correlation_id, causation_id)
        if not signature_ok:
            await uow.emit(
                run.event(
                    RunFailed,
                    plan_id=plan["plan_id"],
                    goal_id=plan["goal_id"],
                    failed_task_ids=[t.task_id for t in body.tasks][:10_000],
                    error=UNSIGNED,
                )
            )
            return run_id
        await uow.emit(
            run.event(
                RunStarted,
                plan_id=plan["plan_id"],
                goal_id=plan["goal_id"],
                plan_version=plan["version"],
                task_count=len(body.tasks),
            )
        )
        await run.bind_and_dispatch([t.task_id for t in body.tasks if not t.depends_on])
    return run_id


# ---- the state changes of one run -----------------------------------------------------------------------------------


class Usage:
    """What an attempt's model turns used, added to the task's totals as each step is checkpointed."""

    __slots__ = ("cost_micro_usd", "input_tokens", "model_ms", "output_tokens", "tool_ms")

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_micro_usd = 0
        self.model_ms = 0.0
        self.tool_ms = 0.0


@dataclass(frozen=True)
class StepRecord:
    """A step to record with a task's completion (a tool task's one call): its number, kind, detail and usage."""

    step: int | None
    kind: str | None
    detail: dict[str, Any] | None
    usage: Usage

    @classmethod
    def none(cls) -> StepRecord:
        return cls(None, None, None, Usage())


class _Run:
    """One run's state changes inside a unit of work (the caller holds the transaction)."""

    def __init__(self, uow: UnitOfWork, tenant_id: UUID, run_id: UUID, correlation_id: str, causation_id: str) -> None:
        self.uow = uow
        self.conn: asyncpg.Connection = uow.conn
        self.tenant_id = tenant_id
        self.run_id = run_id
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self.locked: Mapping[str, Any] | None = None
        # eager dispatch: an invocation finishing a task takes one task it readies itself (claimed in the same
        # transaction, no event), instead of sending it through the bus to another invocation
        self.taker: str | None = None
        self.taken: dict[str, Any] | None = None  # the task taken: its id, attempt, definition, input, ...

    def event(self, kind: type[E], **fields: Any) -> E:
        return kind(  # type: ignore[call-arg]  # every run event has run_id
            tenant_id=self.tenant_id,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            run_id=self.run_id,
            **fields,
        )

    async def lock(self) -> Mapping[str, Any]:
        """The run's row, locked until the transaction ends: a run's transitions happen one at a time."""
        if self.locked is None:
            self.locked = await self.conn.fetchrow(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1 FOR UPDATE",  # noqa: S608 - constant columns
                self.run_id,
            )
            if self.locked is None:
                raise NotFoundError(f"no run {self.run_id}")
        return self.locked

    async def bind_and_dispatch(self, newly_unblocked: list[str]) -> None:
        """Bind the inputs of tasks whose dependencies are all done, then dispatch queued tasks as far as the run's
        parallelism allows, if it is running."""
        rows: list[Any] = []
        if newly_unblocked:
            rows = await self.conn.fetch(
                """SELECT t.task_id, t.attempt, t.definition,
                          (SELECT coalesce(jsonb_object_agg(d.task_id, d.output), '{}') FROM task_executions d
                           WHERE d.run_id = t.run_id AND d.task_id = ANY(t.depends_on)) AS outputs
                   FROM task_executions t WHERE t.run_id = $1 AND t.task_id = ANY($2)""",
                self.run_id,
                newly_unblocked,
            )
        await self.dispatch(await self._bind(rows))

    async def _bind(self, unblocked: list[Any]) -> list[tuple[str, Any]]:
        """Each unblocked task (task_id, attempt, definition, its dependencies' outputs) with its input bound; one
        whose input cannot be bound fails (finally: it blocks its dependents and fails the run)."""
        bound: list[tuple[str, Any]] = []
        for row in unblocked:
            try:
                bound.append((row["task_id"], resolve_input(row["definition"].get("input", {}), row["outputs"])))
            except KeyError as exc:
                problem = str(exc.args[0] if exc.args else exc)
                await self.fail_task(
                    row["task_id"],
                    attempt=row["attempt"],
                    error={
                        "type": "unresolvable_input",
                        "message": f"the input cannot be bound: {problem}",
                        "retryable": False,
                    },
                    final=True,
                )
        return bound

    async def dispatch(self, bound: list[tuple[str, Any]] | None = None) -> int:
        """Queue the `bound` tasks (id, input), then send TaskReady for queued tasks while the run is running and
        has room, the first to the taker if there is one; how many were dispatched. One statement."""
        ids = [task_id for task_id, _ in bound or ()]
        inputs = [value for _, value in bound or ()]
        run = await self.lock()
        room = "0"
        if run["status"] == "running":
            room = "ALL"
            if run["max_parallelism"] is not None:
                active = await self.conn.fetchval(
                    "SELECT count(*) FROM task_executions WHERE run_id = $1 AND status IN ('ready', 'running')",
                    self.run_id,
                )
                room = str(max(run["max_parallelism"] - active, 0))
        if room == "0" and not ids:
            return 0
        # the bound tasks and those queued before are candidates; the first goes straight to the taker (eager
        # dispatch), the others picked become ready, and bound ones not picked (all of them without room) wait as
        # queued
        taker = self.taker if self.taken is None else None
        rows = await self.conn.fetch(
            f"""WITH bound AS (SELECT * FROM unnest($4::text[], $5::jsonb[]) AS b(task_id, input)),
                candidates AS (SELECT task_id, input FROM bound
                               UNION ALL
                               SELECT task_id, NULL::jsonb FROM task_executions
                               WHERE run_id = $1 AND status = 'queued' AND task_id <> ALL($4::text[])),
                picked AS (SELECT task_id, input, row_number() OVER (ORDER BY task_id) AS n FROM candidates
                           ORDER BY task_id LIMIT {room}),
                waiting AS (UPDATE task_executions t SET status = 'queued', input = b.input FROM bound b
                            WHERE t.run_id = $1 AND t.task_id = b.task_id
                              AND b.task_id NOT IN (SELECT task_id FROM picked))
                UPDATE task_executions t SET
                    input = coalesce(p.input, t.input),
                    status = CASE WHEN $2::text IS NOT NULL AND p.n = 1 THEN 'running' ELSE 'ready' END,
                    dispatched_at = now(),
                    lease_owner = CASE WHEN $2::text IS NOT NULL AND p.n = 1 THEN $2::text END,
                    lease_until = CASE WHEN $2::text IS NOT NULL AND p.n = 1
                                       THEN now() + make_interval(secs => $3) END,
                    started_at = CASE WHEN $2::text IS NOT NULL AND p.n = 1 THEN now() ELSE t.started_at END,
                    first_started_at = CASE WHEN $2::text IS NOT NULL AND p.n = 1
                                            THEN coalesce(t.first_started_at, now()) ELSE t.first_started_at END,
                    invocations = t.invocations + CASE WHEN $2::text IS NOT NULL AND p.n = 1 THEN 1 ELSE 0 END
                FROM picked p WHERE t.run_id = $1 AND t.task_id = p.task_id
                RETURNING t.task_id, t.attempt, t.attempt_base, t.status, t.definition, t.input, t.next_step,
                          t.first_started_at""",  # noqa: S608 - room is a number or ALL
            self.run_id,
            taker,
            runtime_settings().runtime_lease_s,
            ids,
            inputs,
        )
        for row in sorted(rows, key=lambda r: r["task_id"]):
            if row["status"] == "running":
                self.taken = {**dict(row), "allowed_tools": run["allowed_tools"], "submitted_by": run["submitted_by"]}
            else:
                await self.uow.emit(self.event(TaskReady, task_id=row["task_id"], attempt=row["attempt"]))
        return len(rows)

    async def complete_task(
        self, task_id: str, attempt: int, owner: str, output: dict[str, Any], last_step: StepRecord | None = None
    ) -> bool:
        """Record a task's output (with `last_step`, the step that produced it, if not checkpointed yet); ready its
        dependents; complete the run when it was the last. False when the attempt was no longer `owner`'s to finish
        (paused or cancelled and released, or its lease taken over): then nothing changes."""
        step = last_step or StepRecord.none()
        # the run's row is locked first, in a statement of its own: a run's transitions happen one at a time, and
        # the statement below, which reads other tasks' outputs, must take its snapshot after the transition before
        # it committed (a lock taken inside it would leave it reading outputs from before the wait)
        await self.conn.execute("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE", self.run_id)
        # then one statement: the task completes if `owner` still holds it (with its last step recorded), the run
        # counts it done, and its dependents count it, those it unblocks returned with their dependencies' outputs
        row = await self.conn.fetchrow(
            f"""WITH done AS (
                    UPDATE task_executions t SET status = 'completed', output = $5, error = NULL, finished_at = now(),
                           lease_owner = NULL, lease_until = NULL,
                           next_step = CASE WHEN $6::text IS NULL THEN t.next_step ELSE $7 + 1 END,
                           input_tokens = t.input_tokens + $8, output_tokens = t.output_tokens + $9,
                           cost_micro_usd = t.cost_micro_usd + $10, model_ms = t.model_ms + $11,
                           tool_ms = t.tool_ms + $12
                    WHERE t.run_id = $1 AND t.task_id = $2 AND t.attempt = $3 AND t.lease_owner = $4
                      AND t.status = 'running' AND ($6::text IS NULL OR t.next_step = $7)
                    RETURNING t.tenant_id, t.definition, t.first_started_at, t.input_tokens, t.output_tokens,
                              t.cost_micro_usd),
                step AS (
                    INSERT INTO task_steps (tenant_id, run_id, task_id, attempt, step, kind, detail, input_tokens,
                                            output_tokens, cost_micro_usd, duration_ms)
                    SELECT tenant_id, $1, $2, $3, $7, $6, $13, $8, $9, $10, $11 + $12 FROM done
                    WHERE $6::text IS NOT NULL),
                counted AS (
                    UPDATE runs SET tasks_done = tasks_done + 1, updated_at = now()
                    WHERE run_id = $1 AND EXISTS (SELECT 1 FROM done)
                    RETURNING {RUN_COLUMNS}),
                unblocked AS (
                    UPDATE task_executions t SET waiting_on = t.waiting_on - 1
                    WHERE t.run_id = $1 AND $2 = ANY(t.depends_on) AND t.status = 'pending'
                      AND EXISTS (SELECT 1 FROM done)
                    RETURNING t.task_id, t.attempt, t.waiting_on, t.definition, t.depends_on)
            SELECT c.*, d.definition AS task_definition, d.first_started_at AS task_first_started_at,
                   d.input_tokens AS task_input_tokens, d.output_tokens AS task_output_tokens,
                   d.cost_micro_usd AS task_cost_micro_usd,
                   (SELECT coalesce(jsonb_agg(jsonb_build_object(
                               'task_id', u.task_id, 'attempt', u.attempt, 'definition', u.definition,
                               'outputs', (SELECT coalesce(jsonb_object_agg(o.task_id, o.output), '{{}}')
                                           FROM task_executions o
                                           WHERE o.run_id = $1 AND o.task_id = ANY(u.depends_on)
                                             AND o.task_id <> $2) || jsonb_build_object($2::text, $5::jsonb))
                           ORDER BY u.task_id), '[]')
                    FROM unblocked u WHERE u.waiting_on = 0) AS unblocked
            FROM counted c, done d""",  # noqa: S608 - constant columns
            self.run_id,
            task_id,
            attempt,
            owner,
            output,
            step.kind,
            step.step,
            step.usage.input_tokens,
            step.usage.output_tokens,
            step.usage.cost_micro_usd,
            step.usage.model_ms,
            step.usage.tool_ms,
            step.detail,
        )
        if row is None:
            return False
        run = {column: row[column] for column in RUN_COLUMN_NAMES}
        self.locked = run
        definition = row["task_definition"]
        await self.uow.emit(
            self.event(
                TaskCompleted,
                task_id=task_id,
                attempt=attempt,
                agent_id=definition.get("agent_id"),
                tool=definition.get("tool"),
                checked=bool(
                    definition.get("output_schema") or definition.get("success_criteria") or definition.get("rubric")
                ),
                output=output,
                duration_ms=max(0, round((time.time() - row["task_first_started_at"].timestamp()) * 1000)),
                input_tokens=row["task_input_tokens"],
                output_tokens=row["task_output_tokens"],
                cost_micro_usd=row["task_cost_micro_usd"],
            )
        )
        if run["tasks_done"] >= run["task_count"] and run["status"] in ("running", "paused"):
            await self.finish_run(run, "completed")
            return True
        await self.dispatch(await self._bind(row["unblocked"]))
        return True

    async def fail_task(
        self, task_id: str, attempt: int, error: dict[str, Any], final: bool, backoff_s: float = 0.0
    ) -> bool:
        """Record a failed attempt: retried (the next attempt readied after `backoff_s`) unless `final`; a final
        failure blocks every task that depends on it and fails the run. False when not this caller's to fail."""
        if not final:
            row = await self.conn.fetchrow(
                """UPDATE task_executions SET status = 'ready', attempt = attempt + 1, next_step = 0, error = $4,
                          not_before = now() + make_interval(secs => $5), dispatched_at = now(),
                          lease_owner = NULL, lease_until = NULL, first_started_at = NULL
                   WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND status = 'running'
                   RETURNING attempt, definition->>'agent_id' AS agent_id, definition->>'tool' AS tool""",
                self.run_id,
                task_id,
                attempt,
                error,
                backoff_s,
            )
            if row is None:
                return False
            await self.uow.emit(self._failed(task_id, attempt, row, error, retryable=True))
            await self.uow.emit(self.event(TaskReady, task_id=task_id, attempt=row["attempt"]))
            return True
        run = await self.lock()
        row = await self.conn.fetchrow(
            """UPDATE task_executions SET status = 'failed', error = $4, finished_at = now(),
                      lease_owner = NULL, lease_until = NULL
               WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND status IN ('running', 'pending', 'queued')
               RETURNING task_id, definition->>'agent_id' AS agent_id, definition->>'tool' AS tool""",
            self.run_id,
            task_id,
            attempt,
            error,
        )
        if row is None:
            return False
        await self.uow.emit(self._failed(task_id, attempt, row, error, retryable=False))
        await self.conn.execute(
            """WITH RECURSIVE downstream(task_id) AS (
                   SELECT task_id FROM task_executions WHERE run_id = $1 AND $2 = ANY(depends_on)
                   UNION
                   SELECT t.task_id FROM task_executions t JOIN downstream d ON d.task_id = ANY(t.depends_on)
                   WHERE t.run_id = $1)
               UPDATE task_executions SET status = 'blocked', finished_at = now(),
                      error = jsonb_build_object('type', 'blocked', 'message', 'a task it depends on failed: ' || $2,
                                                 'retryable', false)
               WHERE run_id = $1 AND task_id IN (SELECT task_id FROM downstream) AND status IN ('pending', 'queued')""",
            self.run_id,
            task_id,
        )
        if run["status"] in ("running", "paused"):
            message = f"task {task_id} failed: {str(error.get('message', ''))[:1500]}"
            await self.finish_run(run, "failed", error=message, failed_task_ids=[task_id])
        return True

    def _failed(
        self, task_id: str, attempt: int, doer: Mapping[str, Any], error: dict[str, Any], retryable: bool
    ) -> TaskFailed:
        """TaskFailed for an attempt; `doer`: the failed task's agent_id and tool."""
        return self.event(
            TaskFailed,
            task_id=task_id,
            attempt=attempt,
            agent_id=doer["agent_id"],
            tool=doer["tool"],
            error_type=str(error.get("type", "error"))[:200],
            error=str(error.get("message", ""))[:2000],
            retryable=retryable,
        )

    async def finish_run(
        self,
        run: Mapping[str, Any],
        status: str,
        *,
        error: str | None = None,
        failed_task_ids: list[str] | None = None,
        requested_by: str = "",
    ) -> None:
        """End the run: its unfinished tasks are cancelled (a running one stops at its next step) and the run's
        event is emitted."""
        await self.conn.execute(
            """UPDATE task_executions SET status = 'cancelled', finished_at = now(), lease_owner = NULL,
                      lease_until = NULL
               WHERE run_id = $1 AND status IN ('pending', 'queued', 'ready', 'running')""",
            self.run_id,
        )
        totals = await self.conn.fetchrow(
            """UPDATE runs r SET status = $2, error = $3, finished_at = now(), updated_at = now(),
                      requested_by = CASE WHEN $4 = '' THEN r.requested_by ELSE $4 END,
                      input_tokens = t.input_tokens, output_tokens = t.output_tokens,
                      cost_micro_usd = t.cost_micro_usd
               FROM (SELECT coalesce(sum(input_tokens), 0) AS input_tokens,
                            coalesce(sum(output_tokens), 0) AS output_tokens,
                            coalesce(sum(cost_micro_usd), 0) AS cost_micro_usd
                     FROM task_executions WHERE run_id = $1) t
               WHERE r.run_id = $1 RETURNING r.cost_micro_usd, r.started_at""",
            self.run_id,
            status,
            error,
            requested_by,
        )
        assert totals is not None
        common = {"plan_id": run["plan_id"], "goal_id": run["goal_id"]}
        if status == "completed":
            duration = max(0, round((time.time() - totals["started_at"].timestamp()) * 1000))
            await self.uow.emit(
                self.event(
                    RunCompleted,
                    **common,
                    task_count=run["task_count"],
                    duration_ms=duration,
                    cost_micro_usd=totals["cost_micro_usd"],
                )
            )
        elif status == "failed":
            await self.uow.emit(
                self.event(RunFailed, **common, failed_task_ids=failed_task_ids or ["run"], error=(error or "")[:2000])
            )
        else:
            await self.uow.emit(
                self.event(RunCancelled, **common, cancelled_by=requested_by[:200], reason=(error or "")[:2000])
            )
        self.locked = None  # its status changed

    async def reopen(self, run: Mapping[str, Any], task_id: str, by: str, reason: str) -> None:
        """Reopen the failed run (locked, as `run`) for a retry of its failed task: the task gets its next attempt
        with a fresh attempt budget (its last error kept until it ends, as an automatic retry keeps it), the tasks
        its failure blocked and those the run's end cancelled wait for their dependencies again (a cancelled one
        resumes its attempt from its checkpoint), the run is running, and what can start is dispatched."""
        await self.conn.execute(
            """UPDATE task_executions SET status = 'pending', waiting_on = 0, attempt = attempt + 1,
                      attempt_base = attempt, next_step = 0, not_before = now(), dispatched_at = NULL,
                      lease_owner = NULL, lease_until = NULL, first_started_at = NULL, finished_at = NULL
               WHERE run_id = $1 AND task_id = $2""",
            self.run_id,
            task_id,
        )
        # every dependency of a retried task has completed; the others count theirs again (the retried task now
        # among the open ones). A reopened task's timeout runs from its next start, not from its first.
        waiting = await self.conn.fetch(
            """UPDATE task_executions t SET status = 'pending', dispatched_at = NULL, lease_owner = NULL,
                      lease_until = NULL, first_started_at = NULL, finished_at = NULL,
                      error = CASE WHEN t.status = 'blocked' THEN NULL ELSE t.error END,
                      waiting_on = (SELECT count(DISTINCT d.task_id) FROM task_executions d
                                    WHERE d.run_id = t.run_id AND d.task_id = ANY(t.depends_on)
                                      AND d.status <> 'completed')
               WHERE t.run_id = $1 AND t.status IN ('blocked', 'cancelled') RETURNING t.task_id, t.waiting_on""",
            self.run_id,
        )
        await self.conn.execute(
            """UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, requested_by = $2,
                      updated_at = now()
               WHERE run_id = $1""",
            self.run_id,
            by,
        )
        self.locked = None  # its status changed
        await self.uow.emit(
            self.event(
                RunReopened,
                plan_id=run["plan_id"],
                goal_id=run["goal_id"],
                task_id=task_id,
                reopened_by=by[:200],
                reason=reason[:2000],
            )
        )
        await self.bind_and_dispatch([task_id, *(row["task_id"] for row in waiting if row["waiting_on"] == 0)])


def run_of(uow: UnitOfWork, tenant_id: UUID, run_id: UUID, correlation_id: str, causation_id: str) -> _Run:
    return _Run(uow, tenant_id, run_id, correlation_id, causation_id)


# ---- the controls: pause, resume, cancel, retry a failed task -----------------------------------------------------


async def control(tenant_id: UUID, run_id: UUID, action: str, by: str, reason: str, correlation_id: str) -> None:
    """Pause, resume or cancel a run. Pausing lets running tasks stop at their next step (checkpointed, to be
    taken up on resume); cancelling stops them there too and ends the run."""
    async with unit_of_work(tenant_id) as uow:
        run = run_of(uow, tenant_id, run_id, correlation_id, correlation_id)
        row = await run.lock()
        status = row["status"]
        if status in TERMINAL_RUN:
            raise ConflictError(f"the run is {status}; only a running or paused run can be {action}d")
        if action == "cancel":
            await run.finish_run(row, "cancelled", error=reason or None, requested_by=by)
            return
        wanted = "paused" if action == "pause" else "running"
        if status == wanted:
            return  # asked twice: already so
        await uow.conn.execute(
            "UPDATE runs SET status = $2, requested_by = $3, updated_at = now() WHERE run_id = $1", run_id, wanted, by
        )
        run.locked = None  # read again (locked still) with its new status
        if action == "resume":
            await redispatch_ready(run, older_than_s=0)
            await run.dispatch()


async def retry_task(tenant_id: UUID, run_id: UUID, task_id: str, by: str, reason: str, correlation_id: str) -> None:
    """Retry a failed run's failed task, reopening the run (see `_Run.reopen`). Checked, then checked against the
    run's goal in planning (outside any transaction: a peer call holds no lock), then checked again under the run's
    lock and done in that one transaction."""
    async with db.transaction(tenant_id) as conn:
        found = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1", run_id)  # noqa: S608
        run = await _check_retry(conn, found, run_id, task_id)
    await _check_goal_failed(tenant_id, run, correlation_id)
    async with unit_of_work(tenant_id) as uow:
        reopened = run_of(uow, tenant_id, run_id, correlation_id, correlation_id)
        locked = await reopened.lock()
        await _check_retry(uow.conn, locked, run_id, task_id)
        await reopened.reopen(locked, task_id, by, reason)


async def _check_retry(
    conn: asyncpg.Connection, run: Mapping[str, Any] | None, run_id: UUID, task_id: str
) -> Mapping[str, Any]:
    """The run, once its task may be retried: 404 for an unknown run or task, 409 (with `retry_refusal`'s reason)
    when the task may not be retried now."""
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    tasks = await conn.fetch(
        "SELECT task_id, status, attempt, definition->'retry'->>'max_attempts' AS max_attempts FROM task_executions "
        "WHERE run_id = $1",
        run_id,
    )
    task = next((t for t in tasks if t["task_id"] == task_id), None)
    if task is None:
        raise NotFoundError(f"run {run_id} has no task {task_id!r}")
    refusal = retry_refusal(
        run_status=run["status"],
        deadline=run["deadline"],
        statuses={t["task_id"]: t["status"] for t in tasks},
        task_id=task_id,
        attempt=task["attempt"],
        max_attempts=int(task["max_attempts"] or 1),
        now=datetime.now(UTC),
    )
    if refusal is not None:
        raise ConflictError(refusal)
    return run


def retry_refusal(
    *,
    run_status: str,
    deadline: datetime | None,
    statuses: Mapping[str, str],
    task_id: str,
    attempt: int,
    max_attempts: int,
    now: datetime,
) -> str | None:
    """Why the task (at `attempt`, given `max_attempts` per retry) of a run whose tasks are in `statuses` cannot be
    retried now; None when it can. Only a failed run's failed task can: a cancelled run stays cancelled (cancelling
    is the operator's final word), a failed run with another failed task could never complete, one past its
    deadline would fail again at once, and no task makes more than ATTEMPT_LIMIT attempts."""
    if run_status == "cancelled":
        return "the run was cancelled, and a cancelled run is never reopened"
    if run_status != "failed":
        return f"the run is {run_status}; only a failed run's failed task can be retried"
    if statuses[task_id] != "failed":
        return f"task {task_id} is {statuses[task_id]}; only a failed task can be retried"
    others = sorted(t for t, status in statuses.items() if status == "failed" and t != task_id)
    if others:
        return f"tasks {', '.join(others[:10])} failed too: the run could not complete with them failed"
    if deadline is not None and deadline <= now:
        return f"the run's deadline ({deadline.isoformat()}) has passed"
    if attempt + max_attempts > ATTEMPT_LIMIT:
        return (
            f"task {task_id} has made {attempt} attempts: {max_attempts} more would pass the limit of {ATTEMPT_LIMIT}"
        )
    return None


async def _check_goal_failed(tenant_id: UUID, run: Mapping[str, Any], correlation_id: str) -> None:
    """409 unless the run's goal failed with this run. A goal planned again after the failure has a new plan with
    its own run (this one reopened would do the goal's work twice); one not failed yet has not taken the failure in,
    and may still be planned again."""
    goal = await peers.get_json(f"/v1/goals/{run['goal_id']}", tenant_id=tenant_id, correlation_id=correlation_id)
    if goal.get("plan_id") != str(run["plan_id"]):
        raise ConflictError("the run's goal was planned again after the run failed: its new plan has its own run")
    if goal.get("status") != "failed":
        raise ConflictError(
            f"the run's goal is {goal.get('status')}, not failed yet: planning may still plan it again; retry shortly"
        )


async def resume_approved(tenant_id: UUID, approval_id: UUID, correlation_id: str, causation_id: str) -> int:
    """The tasks waiting for the approval go on from their last checkpoint (asking for the call again, whose
    answer now follows the approval's outcome); a paused run's wait as ready for its resume. How many."""
    rows = await db.fetch(
        "SELECT run_id FROM task_executions WHERE approval_id = $1 AND status = 'awaiting_approval'",
        approval_id,
        tenant_id=tenant_id,
    )
    resumed = 0
    for run_id in {r["run_id"] for r in rows}:
        async with unit_of_work(tenant_id) as uow:
            run = run_of(uow, tenant_id, run_id, correlation_id, causation_id)
            status = (await run.lock())["status"]
            ready = await uow.conn.fetch(
                """UPDATE task_executions SET status = 'ready', approval_id = NULL, dispatched_at = now()
                   WHERE run_id = $1 AND approval_id = $2 AND status = 'awaiting_approval'
                   RETURNING task_id, attempt, next_step""",
                run_id,
                approval_id,
            )
            if status == "running":
                for row in ready:
                    await uow.emit(_resume_event(run, row))
            resumed += len(ready)
    return resumed


async def follow_suspension(
    tenant_id: UUID, agent_id: UUID | None, suspended: bool, reason: str, correlation_id: str
) -> int:
    """The kill switch: pause the running runs a suspension covers (the tenant's, or those with an open task of
    the agent), whose running tasks then stop at their next step; when it is lifted, resume the runs it paused.
    How many runs changed."""
    rows = await db.fetch(
        """SELECT run_id FROM runs r
           WHERE status = $1 AND ($3::text IS NULL OR requested_by = $3)
             AND ($2::text IS NULL OR EXISTS (
                 SELECT 1 FROM task_executions t WHERE t.run_id = r.run_id AND t.definition->>'agent_id' = $2
                   AND t.status NOT IN ('completed', 'failed', 'cancelled', 'blocked')))""",
        "running" if suspended else "paused",
        str(agent_id) if agent_id else None,
        None if suspended else SUSPENDED_BY,  # lifting resumes only what the kill switch paused
        tenant_id=tenant_id,
    )
    changed = 0
    for row in rows:
        try:
            await control(
                tenant_id, row["run_id"], "pause" if suspended else "resume", SUSPENDED_BY, reason, correlation_id
            )
            changed += 1
        except ConflictError:
            continue  # it ended meanwhile
    return changed


async def redispatch_ready(run: _Run, older_than_s: float) -> int:
    """Send again the event of each ready task of the run nobody has taken for `older_than_s` (and whose backoff
    is over): TaskContinued where it has steps to resume from, else TaskReady."""
    rows = await run.conn.fetch(
        """UPDATE task_executions SET dispatched_at = now()
           WHERE run_id = $1 AND status = 'ready' AND lease_owner IS NULL
             AND (dispatched_at IS NULL OR dispatched_at < now() - make_interval(secs => $2))
           RETURNING task_id, attempt, next_step""",
        run.run_id,
        older_than_s,
    )
    for row in rows:
        await run.uow.emit(_resume_event(run, row))
    return len(rows)


def _resume_event(run: _Run, row: asyncpg.Record) -> Event:
    if row["next_step"] > 0:
        return run.event(TaskContinued, task_id=row["task_id"], attempt=row["attempt"], next_step=row["next_step"])
    return run.event(TaskReady, task_id=row["task_id"], attempt=row["attempt"])


# ---- the reaper ----------------------------------------------------------------------------------------------------


async def reap() -> dict[str, int]:
    """Find work nobody is doing and set it going again, for every tenant: a running task whose lease expired
    (its invocation died) is handed on from its last checkpoint; a ready task whose event was lost is sent again,
    and one waiting long for an approval asks again;
    a run past its deadline is failed. Nothing stays running forever."""
    settings = runtime_settings()
    taken = await db.fetch(
        """SELECT DISTINCT t.tenant_id, t.run_id FROM task_executions t JOIN runs r ON r.run_id = t.run_id
           WHERE r.status = 'running' AND (
                 (t.status = 'running' AND t.lease_until < now())
              OR (t.status = 'ready' AND t.lease_owner IS NULL
                  AND t.dispatched_at < now() - make_interval(secs => $1)
                  AND (t.not_before IS NULL OR t.not_before <= now()))
              OR (t.status = 'awaiting_approval' AND t.dispatched_at < now() - make_interval(secs => $3)))
           LIMIT $2""",
        settings.runtime_redispatch_after_s,
        settings.runtime_reap_batch,
        settings.runtime_approval_recheck_s,
    )
    late = await db.fetch(
        "SELECT tenant_id, run_id FROM runs WHERE status IN ('running', 'paused') AND deadline < now() LIMIT $1",
        settings.runtime_reap_batch,
    )
    resumed = failed = 0
    for row in taken:
        async with unit_of_work(row["tenant_id"]) as uow:
            run = run_of(uow, row["tenant_id"], row["run_id"], str(row["run_id"]), "reaper")
            if (await run.lock())["status"] != "running":
                continue
            await uow.conn.execute(
                """UPDATE task_executions SET status = 'ready', lease_owner = NULL, lease_until = NULL,
                          dispatched_at = NULL
                   WHERE run_id = $1 AND status = 'running' AND lease_until < now()""",
                row["run_id"],
            )
            # a task waiting this long for an approval asks again (its ApprovalDecided may have come before it
            # parked, or been lost): still pending, it parks again
            await uow.conn.execute(
                """UPDATE task_executions SET status = 'ready', approval_id = NULL, dispatched_at = NULL
                   WHERE run_id = $1 AND status = 'awaiting_approval'
                     AND dispatched_at < now() - make_interval(secs => $2)""",
                row["run_id"],
                settings.runtime_approval_recheck_s,
            )
            resumed += await redispatch_ready(run, settings.runtime_redispatch_after_s)
    for row in late:
        async with unit_of_work(row["tenant_id"]) as uow:
            run = run_of(uow, row["tenant_id"], row["run_id"], str(row["run_id"]), "reaper")
            locked = await run.lock()
            if locked["status"] in TERMINAL_RUN:
                continue
            open_tasks = await uow.conn.fetch(
                "SELECT task_id FROM task_executions WHERE run_id = $1 AND status IN ('queued', 'ready', 'running')",
                row["run_id"],
            )
            await run.finish_run(
                locked,
                "failed",
                error=f"the run's deadline ({locked['deadline'].isoformat()}) passed",
                failed_task_ids=[r["task_id"] for r in open_tasks][:10_000] or ["run"],
            )
            failed += 1
    if resumed or failed:
        logger.info("reaped", extra={"resumed_tasks": resumed, "failed_runs": failed})
    return {"resumed_tasks": resumed, "failed_runs": failed}


# ---- reads ---------------------------------------------------------------------------------------------------------


LIST_COLUMNS = "run_id, plan_id, goal_id, plan_version, status, task_count, tasks_done, error, requested_by, updated_at"


async def list_page(
    tenant_id: UUID, page: PageRequest, status: str | None, goal_id: UUID | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's runs, newest first; only those in `status`, or of `goal_id`, when given."""
    where = Where(tenant_id).add_if(status, "status = {}").add_if(goal_id, "goal_id = {}")
    return await fetch_page("runs", LIST_COLUMNS, "run_id", where, page)


async def get(tenant_id: UUID, run_id: UUID) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        run = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1", run_id)  # noqa: S608
        if run is None:
            raise NotFoundError(f"no run {run_id}")
        tasks = await conn.fetch(f"{TASK_VIEW} WHERE run_id = $1 ORDER BY task_id", run_id)
    return {**dict(run), "tasks": [_task_view(t) for t in tasks]}


async def get_task(tenant_id: UUID, run_id: UUID, task_id: str) -> dict[str, Any]:
    """One task of a run with what its plan asked of it (instructions, output schema, success criteria, rubric)."""
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(f"{TASK_VIEW} WHERE run_id = $1 AND task_id = $2", run_id, task_id)
    if row is None:
        raise NotFoundError(f"run {run_id} has no task {task_id!r}")
    definition = row["definition"]
    return _task_view(row) | {
        "instructions": definition.get("instructions", ""),
        "output_schema": definition.get("output_schema"),
        "success_criteria": definition.get("success_criteria", []),
        "rubric": definition.get("rubric"),
    }


def _task_view(row: asyncpg.Record) -> dict[str, Any]:
    task = dict(row)
    definition = task.pop("definition")
    task |= {
        "title": definition.get("title", ""),
        "kind": definition.get("kind", ""),
        "tool": definition.get("tool"),
        "agent_id": definition.get("agent_id"),
        "max_attempts": definition.get("retry", {}).get("max_attempts", 1),
    }
    return task


async def steps(
    tenant_id: UUID, run_id: UUID, task_id: str, after: tuple[int, int] | None, limit: int
) -> list[dict[str, Any]]:
    """A task's steps in order (every attempt), after the (attempt, step) cursor."""
    args: list[Any] = [run_id, task_id]
    where = ""
    if after is not None:
        args += list(after)
        where = " AND (attempt, step) > ($3, $4)"
    args.append(limit)
    async with db.transaction(tenant_id) as conn:
        exists = await conn.fetchval(
            "SELECT true FROM task_executions WHERE run_id = $1 AND task_id = $2", run_id, task_id
        )
        if not exists:
            raise NotFoundError(f"run {run_id} has no task {task_id!r}")
        rows = await conn.fetch(
            "SELECT attempt, step, kind, detail, input_tokens, output_tokens, cost_micro_usd, duration_ms, created_at "  # noqa: S608 - constant text
            f"FROM task_steps WHERE run_id = $1 AND task_id = $2{where} "
            f"ORDER BY attempt, step LIMIT ${len(args)}",
            *args,
        )
    return [dict(r) for r in rows]


def attempts_left(definition: dict[str, Any], attempt: int, attempt_base: int) -> int:
    """How many attempts the task may still make after `attempt`: its plan's max_attempts counts the attempts since
    the operator's last retry (`attempt_base` attempts were made before it)."""
    return int(definition.get("retry", {}).get("max_attempts", 1)) - (attempt - attempt_base)


def backoff(definition: dict[str, Any], attempt: int) -> float:
    """The wait before the attempt after the `attempt`th (counted from the operator's last retry): the plan's base,
    doubled after each failure (capped)."""
    base = float(definition.get("retry", {}).get("backoff_s", 1.0))
    return float(min(base * 2 ** (attempt - 1), timedelta(hours=1).total_seconds()))
