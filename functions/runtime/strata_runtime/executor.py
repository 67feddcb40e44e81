"""Executing one task: the TaskReady / TaskContinued consumer.

An invocation first claims the task's lease (only a ready task, or a running one whose lease expired, of a running
run, at the event's attempt), renews it while it works, and checkpoints every step before taking the next. Between
steps it stops when it has lost the lease (the run was paused or cancelled, or the reaper gave the task to another
invocation) and hands the task on with TaskContinued when the function's deadline is near. A tool call is made
through L03's ledger under (run, task, step, call id), so a step taken again after a crash gets the recorded result
and the tool does not run twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import background, db, handler, jsonschemas
from strata.errors import ConflictError
from strata.events import outbox
from strata.events.outbox import unit_of_work
from strata.events.runtime import TaskContinued, TaskReady
from strata_runtime import runs
from strata_runtime.calls import PeerFailure, invoke_tool
from strata_runtime.runs import Usage, attempts_left, backoff
from strata_runtime.settings import runtime_settings

logger = Logger(child=True)


class LeaseLost(Exception):
    """The task is no longer this invocation's: the run was paused or cancelled, or the lease passed to another."""


class HandOn(Exception):
    """The invocation's deadline is near: the task continues in a new invocation from its last checkpoint."""


class AwaitingApproval(Exception):
    """A tool call of the task needs a human's approval: the task waits (its lease given up) until the approval's
    outcome (ApprovalDecided) sends it on from its last checkpoint."""

    def __init__(self, approval_id: str) -> None:
        super().__init__(approval_id)
        self.approval_id = approval_id


class Suspended(Exception):
    """Supervision refused a call because the tenant or the agent is suspended (the kill switch): the run pauses
    and the task stops here, to go on when the suspension is lifted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TaskFailure(Exception):
    """The attempt failed; `retryable` says whether another attempt may succeed."""

    def __init__(self, kind: str, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable

    def record(self) -> dict[str, Any]:
        return {"type": self.kind, "message": self.message[:2000], "retryable": self.retryable}


@dataclass
class Attempt:
    """One invocation's hold on one attempt of a task."""

    tenant_id: UUID
    run_id: UUID
    task_id: str
    attempt: int
    attempt_base: int  # attempts made before the operator's last retry: max_attempts counts those after it
    owner: str
    correlation_id: str
    causation_id: str
    definition: dict[str, Any]
    input: dict[str, Any]
    next_step: int
    allowed_tools: list[str] | None
    first_started: float
    submitted_by: str = ""  # the principal the run works for: a tool task's calls are made on its behalf
    usage: Usage = field(default_factory=Usage)
    lost: bool = False
    # a last step recorded together with the task's completion (a tool task's one call), saving a transaction
    final_step: tuple[str, dict[str, Any], Usage] | None = None

    @classmethod
    def held(
        cls,
        row: Any,
        *,
        tenant_id: UUID,
        run_id: UUID,
        task_id: str,
        attempt: int,
        owner: str,
        correlation_id: str,
        causation_id: str,
    ) -> Attempt:
        """The attempt this invocation now holds, from its task's row (as a claim returned it)."""
        return cls(
            tenant_id=tenant_id,
            run_id=run_id,
            task_id=task_id,
            attempt=attempt,
            attempt_base=row["attempt_base"],
            owner=owner,
            correlation_id=correlation_id,
            causation_id=causation_id,
            definition=row["definition"],
            input=row["input"] or {},
            next_step=row["next_step"],
            allowed_tools=row["allowed_tools"],
            first_started=row["first_started_at"].timestamp(),
            submitted_by=row["submitted_by"] or "",
        )

    def last_step(self) -> runs.StepRecord | None:
        """The final step to record with the task's completion, numbered as the next step."""
        if self.final_step is None:
            return None
        return runs.StepRecord(self.next_step, *self.final_step)

    @property
    def timeout_s(self) -> float:
        return float(self.definition.get("timeout_s", 300))

    def check(self) -> None:
        """Between steps: stop if the task is no longer ours, fail it past its timeout, hand it on near the
        deadline."""
        if self.lost:
            raise LeaseLost
        if time.time() - self.first_started > self.timeout_s:
            raise TaskFailure("timeout", f"the task ran past its timeout of {self.timeout_s:g} s", retryable=True)
        remaining = handler.remaining_s()
        if remaining is not None and remaining < runtime_settings().runtime_continue_margin_s:
            raise HandOn

    async def checkpoint(self, kind: str, detail: dict[str, Any], usage: Usage | None = None) -> int:
        """Record the step taken, with its usage, before the next one begins; its number."""
        async with db.transaction(self.tenant_id) as conn:
            step, run_status = await self.record_step(conn, kind, detail, usage)
        if run_status != "running":  # paused or ended: the step is kept; the task stops here
            self.lost = True
        return step

    async def record_step(
        self, conn: Any, kind: str, detail: dict[str, Any], usage: Usage | None = None
    ) -> tuple[int, str]:
        """Record a step in the caller's transaction (renewing the lease); its number and the run's status.
        LeaseLost when the task is no longer this invocation's."""
        step = self.next_step
        spent = usage or Usage()
        # one statement: the task's row moves on (only if this invocation still holds it at this step) and the step
        # is inserted from what that returned, so nothing is recorded for a task that is no longer ours
        run_status = await conn.fetchval(
            """WITH moved AS (
                   UPDATE task_executions SET next_step = $5 + 1, lease_until = now() + make_interval(secs => $6),
                          input_tokens = input_tokens + $7, output_tokens = output_tokens + $8,
                          cost_micro_usd = cost_micro_usd + $9, model_ms = model_ms + $10, tool_ms = tool_ms + $11
                   WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND lease_owner = $4 AND status = 'running'
                     AND next_step = $5
                   RETURNING tenant_id, (SELECT status FROM runs WHERE run_id = $1) AS run_status),
               recorded AS (
                   INSERT INTO task_steps (tenant_id, run_id, task_id, attempt, step, kind, detail, input_tokens,
                                           output_tokens, cost_micro_usd, duration_ms)
                   SELECT tenant_id, $1, $2, $3, $5, $12, $13, $7, $8, $9, $10 + $11 FROM moved)
               SELECT run_status FROM moved""",
            self.run_id,
            self.task_id,
            self.attempt,
            self.owner,
            step,
            runtime_settings().runtime_lease_s,
            spent.input_tokens,
            spent.output_tokens,
            spent.cost_micro_usd,
            spent.model_ms,
            spent.tool_ms,
            kind,
            detail,
        )
        if run_status is None:
            raise LeaseLost
        self.next_step = step + 1
        return step, str(run_status)

    async def recorded_steps(self) -> list[dict[str, Any]]:
        """This attempt's steps so far, in order (what a resumed attempt rebuilds its state from)."""
        if self.next_step == 0:
            return []  # a fresh attempt: nothing to read
        rows = await db.fetch(
            "SELECT step, kind, detail FROM task_steps WHERE run_id = $1 AND task_id = $2 AND attempt = $3 "
            "ORDER BY step",
            self.run_id,
            self.task_id,
            self.attempt,
            tenant_id=self.tenant_id,
        )
        return [dict(r) for r in rows]


async def on_task_event(event: TaskReady | TaskContinued) -> None:
    """The TaskReady / TaskContinued consumer: work on the task if it is this event's to work on, then on each
    task its completion readied and handed straight to this invocation (while it has the time)."""
    owner = handler.invocation_id()
    attempt = await _claim(event, owner)
    try:
        while attempt is not None:
            async with _heartbeat(attempt):
                attempt = await _work(attempt)
    finally:
        # the completions' events were published off the path while the work went on; they are all out before the
        # invocation ends (a frozen environment would hold back what is left)
        await outbox.flush_pending()
        await background.drain()


async def _claim(event: TaskReady | TaskContinued, owner: str) -> Attempt | None:
    settings = runtime_settings()
    async with db.transaction(event.tenant_id) as conn:
        row = await conn.fetchrow(
            """UPDATE task_executions t SET status = 'running', lease_owner = $4,
                      lease_until = now() + make_interval(secs => $5), started_at = now(),
                      first_started_at = coalesce(t.first_started_at, now()), invocations = t.invocations + 1
               FROM runs r
               WHERE t.run_id = $1 AND t.task_id = $2 AND t.attempt = $3 AND r.run_id = t.run_id
                 AND r.status = 'running'
                 AND (t.status = 'ready' OR (t.status = 'running' AND t.lease_until < now()))
               RETURNING t.definition, t.attempt_base, t.input, t.next_step, t.not_before, t.first_started_at,
                         r.allowed_tools, r.submitted_by""",
            event.run_id,
            event.task_id,
            event.attempt,
            owner,
            settings.runtime_lease_s,
        )
    if row is None:
        return None  # done, taken, paused, cancelled, or an older attempt's event
    attempt = Attempt.held(
        row,
        tenant_id=event.tenant_id,
        run_id=event.run_id,
        task_id=event.task_id,
        attempt=event.attempt,
        owner=owner,
        correlation_id=event.correlation_id,
        causation_id=str(event.event_id),
    )
    if row["not_before"] is not None:  # a retry's backoff: wait it out here if the invocation has the time
        wait = row["not_before"].timestamp() - time.time()
        remaining = handler.remaining_s()
        if wait > 0 and remaining is not None and wait > remaining - settings.runtime_continue_margin_s:
            await _release(attempt)  # the reaper sends the event again once the backoff is over
            return None
        if wait > 0:
            await asyncio.sleep(wait)
    return attempt


@contextlib.asynccontextmanager
async def _heartbeat(attempt: Attempt) -> AsyncIterator[None]:
    """Renew the lease while the attempt works (a model turn or a tool call may outlast it); notice its loss."""
    period = runtime_settings().runtime_lease_s / 3

    async def beat() -> None:
        while True:
            await asyncio.sleep(period)
            kept = await db.fetch(
                """UPDATE task_executions SET lease_until = now() + make_interval(secs => $5)
                   WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND lease_owner = $4 AND status = 'running'
                   RETURNING (SELECT status FROM runs WHERE run_id = $1) AS run_status""",
                attempt.run_id,
                attempt.task_id,
                attempt.attempt,
                attempt.owner,
                runtime_settings().runtime_lease_s,
                tenant_id=attempt.tenant_id,
            )
            if not kept or kept[0]["run_status"] != "running":
                attempt.lost = True
                return

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _work(attempt: Attempt) -> Attempt | None:
    """Work on the attempt until it completes, fails, stops or is handed on; the task its completion gave this
    invocation to do next, if any."""
    from strata_runtime import agent

    try:
        attempt.check()
        if attempt.definition["kind"] == "tool":
            output = await _tool_task(attempt)
        else:
            output = await agent.run(attempt)
        output = _checked_output(attempt, output)
    except LeaseLost:
        await _release(attempt)
        return None
    except HandOn:
        await _hand_on(attempt)
        return None
    except AwaitingApproval as waiting:
        await _release(attempt, awaiting=UUID(waiting.approval_id))
        logger.info("task awaits approval", extra={"task_id": attempt.task_id, "approval_id": waiting.approval_id})
        return None
    except Suspended as stopped:
        await _pause_suspended(attempt, stopped.reason)
        await _release(attempt)
        return None
    except TaskFailure as failure:
        if attempt.final_step is not None:  # the call happened: its record stays with the attempt
            with contextlib.suppress(LeaseLost):
                await attempt.checkpoint(*attempt.final_step)
        await _fail(attempt, failure)
        return None
    remaining = handler.remaining_s()
    settings = runtime_settings()
    eager = remaining is None or remaining > 2 * settings.runtime_continue_margin_s
    try:
        async with unit_of_work(attempt.tenant_id, publish_soon=True) as uow:
            run = runs.run_of(uow, attempt.tenant_id, attempt.run_id, attempt.correlation_id, attempt.causation_id)
            run.taker = attempt.owner if eager else None
            completed = await run.complete_task(
                attempt.task_id, attempt.attempt, attempt.owner, output, attempt.last_step()
            )
    except LeaseLost:
        await _release(attempt)
        return None
    if not completed:  # no longer ours (paused, cancelled, or taken over): the task is where its holder left it
        await _release(attempt)
        return None
    if run.taken is None:
        return None
    return Attempt.held(  # the task its completion handed to this invocation
        run.taken,
        tenant_id=attempt.tenant_id,
        run_id=attempt.run_id,
        task_id=run.taken["task_id"],
        attempt=run.taken["attempt"],
        owner=attempt.owner,
        correlation_id=attempt.correlation_id,
        causation_id=attempt.causation_id,
    )


async def _tool_task(attempt: Attempt) -> dict[str, Any]:
    """A tool task: one call of its tool with its bound input (step 0; a resumed attempt replays the ledger)."""
    tool = str(attempt.definition["tool"])
    if attempt.allowed_tools is not None and tool not in attempt.allowed_tools:
        raise TaskFailure("tool_not_allowed", f"the goal's constraints do not allow the tool {tool!r}", False)
    for step in await attempt.recorded_steps():
        if step["kind"] == "tool":
            return _tool_output(step["detail"])
    started = time.perf_counter()
    try:
        call = await invoke_tool(attempt, tool, attempt.input, attempt.next_step, f"a{attempt.attempt}")
    except PeerFailure as exc:
        raise failure_of(exc) from exc
    usage = Usage()
    usage.tool_ms = (time.perf_counter() - started) * 1000
    detail = _tool_detail(tool, call)
    attempt.final_step = ("tool", detail, usage)  # recorded with the completion, or with the failure
    return _tool_output(detail)


def failure_of(exc: PeerFailure) -> Exception:
    """What a failed peer call means for the task: a wait for a human, a stop for the kill switch, or a failure."""
    if exc.kind == "awaiting_approval":
        return AwaitingApproval(exc.message)
    if exc.kind == "suspended":
        return Suspended(exc.message)
    return TaskFailure(exc.kind, exc.message, exc.retryable)


def _tool_detail(tool: str, call: dict[str, Any]) -> dict[str, Any]:
    return {
        "tool": tool,
        "call_id": call.get("call_id"),
        "step": call.get("step"),
        "input": call.get("input"),
        "status": call.get("status"),
        "output": call.get("output"),
        "error": call.get("error"),
        "duration_ms": call.get("duration_ms"),
        "replayed": call.get("replayed", False),
    }


NOT_RETRYABLE = frozenset({"bad_input", "denied", "too_large", "invalid_output", "output_limit"})


def _tool_output(detail: dict[str, Any]) -> dict[str, Any]:
    if detail["status"] == "succeeded":
        return dict(detail["output"] or {})
    error = detail.get("error") or {}
    kind = str(error.get("kind", "error"))
    raise TaskFailure(
        f"tool_{kind}", f"{detail['tool']}: {error.get('message', 'the call failed')}", kind not in NOT_RETRYABLE
    )


def _checked_output(attempt: Attempt, output: dict[str, Any]) -> dict[str, Any]:
    schema = attempt.definition.get("output_schema")
    if schema:
        wrong = jsonschemas.first_error(schema, output)
        if wrong is not None:
            raise TaskFailure("invalid_output", f"the output does not match the task's output schema {wrong}", True)
    return output


async def _fail(attempt: Attempt, failure: TaskFailure) -> None:
    final = not failure.retryable or attempts_left(attempt.definition, attempt.attempt, attempt.attempt_base) <= 0
    logger.info(
        "task attempt failed",
        extra={"task_id": attempt.task_id, "attempt": attempt.attempt, "kind": failure.kind, "final": final},
    )
    async with unit_of_work(attempt.tenant_id) as uow:
        run = runs.run_of(uow, attempt.tenant_id, attempt.run_id, attempt.correlation_id, attempt.causation_id)
        wait = backoff(attempt.definition, attempt.attempt - attempt.attempt_base)
        await run.fail_task(attempt.task_id, attempt.attempt, failure.record(), final, wait)


async def _hand_on(attempt: Attempt) -> None:
    """Give the task back as ready and send TaskContinued: the next invocation resumes at the next step."""
    async with unit_of_work(attempt.tenant_id) as uow:
        handed = await uow.conn.fetchval(
            """UPDATE task_executions SET status = 'ready', lease_owner = NULL, lease_until = NULL,
                      dispatched_at = now()
               WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND lease_owner = $4 AND status = 'running'
               RETURNING next_step""",
            attempt.run_id,
            attempt.task_id,
            attempt.attempt,
            attempt.owner,
        )
        if handed is None:
            return
        run = runs.run_of(uow, attempt.tenant_id, attempt.run_id, attempt.correlation_id, attempt.causation_id)
        await uow.emit(run.event(TaskContinued, task_id=attempt.task_id, attempt=attempt.attempt, next_step=handed))


async def _pause_suspended(attempt: Attempt, reason: str) -> None:
    """Pause the run for the kill switch (if SuspensionChanged has not paused it already)."""
    with contextlib.suppress(ConflictError):
        await runs.control(
            attempt.tenant_id, attempt.run_id, "pause", runs.SUSPENDED_BY, reason[:2000], attempt.correlation_id
        )


async def _release(attempt: Attempt, awaiting: UUID | None = None) -> None:
    """Stop working on the task: a paused run's task waits as ready (resume sends it again); with `awaiting`, it
    waits for that approval (nothing sends it on but ApprovalDecided, a resume after it, or the reaper's recheck,
    timed from now); a cancelled or taken-over one is left as it is."""
    await db.fetch(
        """UPDATE task_executions SET lease_owner = NULL, lease_until = NULL, approval_id = $5,
                  status = CASE WHEN $5::uuid IS NULL THEN 'ready' ELSE 'awaiting_approval' END,
                  dispatched_at = CASE WHEN $5::uuid IS NULL THEN dispatched_at ELSE now() END
           WHERE run_id = $1 AND task_id = $2 AND attempt = $3 AND lease_owner = $4 AND status = 'running'
           RETURNING true""",
        attempt.run_id,
        attempt.task_id,
        attempt.attempt,
        attempt.owner,
        awaiting,
        tenant_id=attempt.tenant_id,
    )
