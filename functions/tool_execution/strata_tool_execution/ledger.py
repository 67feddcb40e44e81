"""Every tool call goes through the ledger, keyed by (run, task, step, call id): the first request claims the key
and runs the tool; a repeated request gets the recorded result and the tool does not run again (a redelivered
event, a retried invocation, a resumed task). A claim carries a lease: a call whose executor died before recording
a result is closed as `interrupted` once the lease has passed, never silently re-run, because whether its side
effects happened is unknown."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from strata import db, decisions, jsonschemas, timing
from strata.decisions import DecisionAnswer, DecisionRequest, EntityRef, Subject
from strata.errors import (
    BadRequestError,
    ConflictError,
    DependencyUnavailableError,
    ForbiddenError,
    InvalidInputError,
    SuspendedError,
)
from strata.events.outbox import UnitOfWork, unit_of_work
from strata.events.tools import ToolCalled
from strata.pagination import decode_values, encode_values
from strata_tool_execution import registry
from strata_tool_execution.definitions import ToolContext, ToolFailure

LEASE_GRACE_S = 30.0  # beyond the tool's timeout, before a running call counts as interrupted
COLUMNS = (
    "run_id, task_id, step, call_id, tool_name, tool_version, input, status, output, error, started_at, finished_at,"
    " run_ms, decision_id"
)
ARGUMENTS_SHOWN = 10_000  # characters of a call's input (canonical JSON) policies see as context.arguments


@dataclass(frozen=True)
class CallKey:
    run_id: UUID
    task_id: str
    step: int
    call_id: str

    def text(self) -> str:
        return f"{self.run_id}/{self.task_id}/{self.step}/{self.call_id}"


def _duration_ms(row: dict[str, Any]) -> float | None:
    """The tool's own running time; for a call closed without an answer (interrupted), its record's span."""
    run_ms, started, finished = row["run_ms"], row["started_at"], row["finished_at"]
    if run_ms is not None:
        return float(run_ms)
    return (finished - started).total_seconds() * 1000 if finished else None


def _view(row: dict[str, Any], replayed: bool) -> dict[str, Any]:
    duration = _duration_ms(row)
    view = {k: v for k, v in row.items() if k != "run_ms"}
    return {**view, "duration_ms": round(duration, 2) if duration is not None else None, "replayed": replayed}


@dataclass(frozen=True)
class Actor:
    """Who makes the call, as supervision judges it: an agent or a principal, and whom the work is for."""

    principal: EntityRef
    on_behalf_of: str


async def invoke(
    tenant_id: UUID, correlation_id: str, name: str, arguments: dict[str, Any], key: CallKey, actor: Actor
) -> dict[str, Any]:
    """Run the call once, if supervision allows it; the recorded call (`replayed` when it had already been made,
    whatever the tool's settings and the policies are now: a call that happened is answered as it happened). A
    denied call is recorded as failed (`denied`, with the reasons); a call needing a human's approval is not made
    and answers `awaiting_approval` (asking again with the same key after the approval's outcome goes on)."""
    async with db.transaction(tenant_id) as conn:  # the record, or the tool as the tenant has it
        recorded = await _recorded_on(conn, key)
        tool = await registry.tool_on(conn, name) if recorded is None else None
    if recorded is not None:
        return await _replay(tenant_id, correlation_id, recorded, name, arguments, key)
    assert tool is not None
    if not tool.enabled:
        raise ForbiddenError(f"the tool {name!r} is disabled for this tenant")
    error = jsonschemas.first_error(tool.definition.input_schema, arguments)
    if error is not None:
        raise InvalidInputError(f"the input does not match the {name} tool's input schema {error}")
    answer = await _decision(tenant_id, correlation_id, tool, arguments, key, actor)
    if answer.outcome == "approval_required":
        return {
            "status": "awaiting_approval",
            "approval_id": answer.approval_id,
            "deadline": answer.deadline,
            "reasons": answer.reasons,
            "decision_id": answer.decision_id,
        }
    if answer.suspended:  # the kill switch: refused, not recorded (the call may be made once it is lifted)
        raise SuspendedError("; ".join(answer.reasons))
    version = tool.definition.version
    async with unit_of_work(tenant_id, publish_soon=True) as uow:  # the claim, or the record of a quick call
        if answer.outcome == "deny":
            denied = Ran(None, ToolFailure("denied", "; ".join(answer.reasons)[:2000]), None)
            row = await _record_on(uow, tenant_id, correlation_id, key, name, version, arguments, denied, answer)
            if row is not None:
                return _view(row, replayed=False)
            recorded = await _recorded_on(uow.conn, key)
        elif tool.definition.instant:
            # pure, in-process and quick: it runs inside this transaction and is recorded with its result (one
            # transaction, not a claim and a finish); two callers racing on one key both may run it, harmlessly,
            # and the first to record answers both
            ran = await _run(tool, tenant_id, arguments)
            row = await _record_on(uow, tenant_id, correlation_id, key, name, version, arguments, ran, answer)
            if row is not None:
                return _view(row, replayed=False)
            recorded = await _recorded_on(uow.conn, key)
        else:
            recorded = await _claim_on(uow.conn, tenant_id, version, name, arguments, key, tool.timeout_s, answer)
    if recorded is not None:
        return await _replay(tenant_id, correlation_id, recorded, name, arguments, key)
    ran = await _run(tool, tenant_id, arguments)
    row = await _finish(tenant_id, correlation_id, key, name, version, ran)
    return _view(row, replayed=False)


async def _decision(
    tenant_id: UUID,
    correlation_id: str,
    tool: registry.EffectiveTool,
    arguments: dict[str, Any],
    key: CallKey,
    actor: Actor,
) -> DecisionAnswer:
    """Supervision's answer on the call (fail closed: no answer is a refusal, 503, and the tool does not run)."""
    text = key.text()
    subject = text if len(text) <= 200 else f"{key.run_id}/{hashlib.sha256(text.encode()).hexdigest()}"
    shown = json.dumps(arguments, ensure_ascii=False, sort_keys=True, default=str)
    request = DecisionRequest(
        action="tool.invoke",
        principal=actor.principal,
        resource=EntityRef(type="Tool", id=tool.definition.name),
        resource_attributes={
            "source": tool.source,
            "side_effects": tool.definition.side_effects,
            "requires_approval": tool.requires_approval,
        },
        context={"run_id": str(key.run_id), "task_id": key.task_id, "arguments": shown[:ARGUMENTS_SHOWN]},
        subject=Subject(type="tool_call", id=subject),
        what=f"call {tool.definition.name} with {shown[:500]}",
        details={
            "run_id": str(key.run_id),
            "task_id": key.task_id,
            "step": key.step,
            "call_id": key.call_id,
            "tool": tool.definition.name,
        },
        on_behalf_of=actor.on_behalf_of,
    )
    started = time.perf_counter()
    try:
        answer = await decisions.ask(tenant_id, correlation_id, request)
    except decisions.SupervisionUnavailable as exc:
        raise DependencyUnavailableError(
            f"the call is refused: supervision (L08) did not answer, and no call is made without its decision ({exc})",
            headers={"Retry-After": "2"},
        ) from exc
    timing.add("decision", (time.perf_counter() - started) * 1000, "cached" if answer.cached else "asked")
    return answer


@dataclass(frozen=True)
class Ran:
    """What running a tool gave: its output or its failure, and its own running time."""

    output: dict[str, Any] | None
    failure: ToolFailure | None
    run_ms: float | None  # None for a call closed without running here (interrupted)

    @property
    def status(self) -> str:
        return "failed" if self.failure is not None else "succeeded"

    @property
    def error(self) -> dict[str, Any] | None:
        return self.failure.as_record() if self.failure is not None else None


async def _run(tool: registry.EffectiveTool, tenant_id: UUID, arguments: dict[str, Any]) -> Ran:
    """Run the tool within its limits and check its output against its schema."""
    context = ToolContext(tenant_id, tool.timeout_s, tool.max_output_bytes, tool.config, tool.target)
    output: dict[str, Any] | None = None
    failure: ToolFailure | None = None
    run = tool.definition.runner()
    started = time.perf_counter()
    try:
        try:
            async with asyncio.timeout(tool.timeout_s + 1):  # the tool bounds itself; this bounds the tool
                output = await run(arguments, context)
        finally:
            run_ms = (time.perf_counter() - started) * 1000  # the tool's own time, whatever its outcome
        size = len(json.dumps(output, default=str))
        if size > tool.max_output_bytes:
            failure = ToolFailure("too_large", f"the output is {size} bytes, over the limit of {tool.max_output_bytes}")
        elif (wrong := jsonschemas.first_error(tool.definition.output_schema, output)) is not None:
            failure = ToolFailure("invalid_output", f"the output does not match the tool's output schema {wrong}")
    except ToolFailure as exc:
        failure = exc
    except TimeoutError:
        failure = ToolFailure("timeout", f"the tool did not finish within {tool.timeout_s} s")
    return Ran(output if failure is None else None, failure, run_ms)


async def _record_on(
    uow: UnitOfWork,
    tenant_id: UUID,
    correlation_id: str,
    key: CallKey,
    name: str,
    version: int,
    arguments: dict[str, Any],
    ran: Ran,
    answer: DecisionAnswer,
) -> dict[str, Any] | None:
    """Record a call with its result, made (an instant call) or refused (None if another caller recorded the key
    meanwhile)."""
    row = await uow.conn.fetchrow(
        f"""INSERT INTO tool_calls (tenant_id, run_id, task_id, step, call_id, tool_name, tool_version, input,
                                    status, output, error, finished_at, run_ms, lease_until, decision_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, clock_timestamp(), $12, now(), $13)
            ON CONFLICT DO NOTHING RETURNING {COLUMNS}""",  # noqa: S608 - constant columns
        tenant_id,
        key.run_id,
        key.task_id,
        key.step,
        key.call_id,
        name,
        version,
        arguments,
        ran.status,
        ran.output,
        ran.error,
        ran.run_ms,
        answer.decision_id,
    )
    if row is None:
        return None
    recorded = dict(row)
    await uow.emit(_event(tenant_id, correlation_id, key, recorded, replayed=False))
    return recorded


RECORDED = (
    f"SELECT {COLUMNS}, lease_until < now() AS lease_over FROM tool_calls "  # noqa: S608 - constant columns
    "WHERE run_id = $1 AND task_id = $2 AND step = $3 AND call_id = $4"
)


async def _recorded_on(conn: Any, key: CallKey) -> dict[str, Any] | None:
    """The call recorded under the key, if any (with whether its lease has passed)."""
    row = await conn.fetchrow(RECORDED, key.run_id, key.task_id, key.step, key.call_id)
    return dict(row) if row is not None else None


async def _claim_on(
    conn: Any,
    tenant_id: UUID,
    version: int,
    name: str,
    arguments: dict[str, Any],
    key: CallKey,
    timeout_s: float,
    answer: DecisionAnswer,
) -> dict[str, Any] | None:
    """Claim the key (None) or return the call recorded under it meanwhile."""
    inserted = await conn.fetchval(
        """INSERT INTO tool_calls (tenant_id, run_id, task_id, step, call_id, tool_name, tool_version, input,
                                   status, lease_until, decision_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', now() + make_interval(secs => $9), $10)
           ON CONFLICT DO NOTHING RETURNING true""",
        tenant_id,
        key.run_id,
        key.task_id,
        key.step,
        key.call_id,
        name,
        version,
        arguments,
        timeout_s + LEASE_GRACE_S,
        answer.decision_id,
    )
    return None if inserted else await _recorded_on(conn, key)


async def _replay(
    tenant_id: UUID, correlation_id: str, row: dict[str, Any], name: str, arguments: dict[str, Any], key: CallKey
) -> dict[str, Any]:
    if row["tool_name"] != name or row["input"] != arguments:
        raise ConflictError(
            f"the call {key.text()} was made with another tool or input; a call id names one call",
            recorded_tool=row["tool_name"],
        )
    lease_over = row.pop("lease_over")
    if row["status"] == "running":
        if not lease_over:
            raise ConflictError(
                f"the call {key.text()} is running; ask again for its result", headers={"Retry-After": "1"}
            )
        interrupted = ToolFailure(
            "interrupted", "the call's executor stopped before recording a result; its side effects are unknown"
        )
        finished = await _finish(
            tenant_id, correlation_id, key, row["tool_name"], row["tool_version"], Ran(None, interrupted, None)
        )
        return _view(finished, replayed=False)
    await _emit(tenant_id, correlation_id, key, row, replayed=True)
    return _view(row, replayed=True)


async def _finish(
    tenant_id: UUID,
    correlation_id: str,
    key: CallKey,
    name: str,
    version: int,
    ran: Ran,
) -> dict[str, Any]:
    # ToolCalled is an observation (the call's record is the ledger row, answered at once): it is published off the
    # answer's path, as the environment's loop next runs, or by the outbox sweeper if the environment is frozen
    # first; waiting for PutEvents here would cost every tool call of every run its latency.
    async with unit_of_work(tenant_id, publish_soon=True) as uow:  # ToolCalled: see _finish
        row = await uow.conn.fetchrow(
            f"""UPDATE tool_calls SET status = $5, output = $6, error = $7, finished_at = now(), run_ms = $8
                WHERE run_id = $1 AND task_id = $2 AND step = $3 AND call_id = $4 AND status = 'running'
                RETURNING {COLUMNS}""",  # noqa: S608 - constant columns
            key.run_id,
            key.task_id,
            key.step,
            key.call_id,
            ran.status,
            ran.output,
            ran.error,
            ran.run_ms,
        )
        if row is None:  # another invocation closed it meanwhile (an interrupted call): the record stands
            raise ConflictError(f"the call {key.text()} was closed by another invocation; ask again for its result")
        recorded = dict(row)
        await uow.emit(_event(tenant_id, correlation_id, key, recorded, replayed=False))
    return recorded


def _event(tenant_id: UUID, correlation_id: str, key: CallKey, row: dict[str, Any], replayed: bool) -> ToolCalled:
    duration = _duration_ms(row)
    error = row["error"] or {}
    outcome = "succeeded" if row["status"] == "succeeded" else ("denied" if error.get("kind") == "denied" else "failed")
    return ToolCalled(
        tenant_id=tenant_id,
        correlation_id=correlation_id,
        call_id=key.text()[:200],
        run_id=key.run_id,
        task_id=key.task_id,
        step=key.step,
        tool_name=row["tool_name"],
        tool_version=row["tool_version"],
        outcome=outcome,
        duration_ms=max(0, round(duration)) if duration is not None else 0,
        replayed=replayed,
    )


async def _emit(tenant_id: UUID, correlation_id: str, key: CallKey, row: dict[str, Any], replayed: bool) -> None:
    async with unit_of_work(tenant_id, publish_soon=True) as uow:  # ToolCalled: see _finish
        await uow.emit(_event(tenant_id, correlation_id, key, row, replayed))


OUTCOME_CLAUSES = {
    "running": "status = 'running'",
    "succeeded": "status = 'succeeded'",
    "failed": "status = 'failed' AND coalesce(error->>'kind', '') <> 'denied'",
    "denied": "status = 'failed' AND error->>'kind' = 'denied'",
}


async def calls(
    tenant_id: UUID,
    run_id: UUID | None,
    task_id: str | None,
    limit: int,
    cursor: str | None,
    outcome: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A run's recorded calls (optionally one task's, optionally of one outcome) in step order; without a run, the
    newest calls first. Cursor paginated by the order's key."""
    clauses: list[str] = [OUTCOME_CLAUSES[outcome] if outcome else "true"]
    args: list[Any] = []
    key_columns: tuple[str, ...]
    for column, value in (("run_id", run_id), ("task_id", task_id)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if run_id is not None:
        order, key_columns, direction = "task_id, step, call_id", ("task_id", "step", "call_id"), ">"
    else:
        order = "started_at DESC, run_id DESC, task_id DESC, step DESC, call_id DESC"
        key_columns, direction = ("started_at", "run_id", "task_id", "step", "call_id"), "<"
    if cursor is not None:
        values = decode_values(cursor, len(key_columns))
        if run_id is None:
            values[0], values[1] = _at(values[0]), _uuid(values[1])
        first = len(args) + 1
        args += values
        marks = ", ".join(f"${first + i}" for i in range(len(values)))
        clauses.append(f"({', '.join(key_columns)}) {direction} ({marks})")
    args.append(limit + 1)
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM tool_calls WHERE {' AND '.join(clauses)} "  # noqa: S608 - constant columns
        f"ORDER BY {order} LIMIT ${len(args)}",
        *args,
        tenant_id=tenant_id,
    )
    items = [_view(dict(r), replayed=False) for r in rows[:limit]]
    more = len(rows) > limit
    return items, encode_values([items[-1][c] for c in key_columns]) if more else None


def _at(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise BadRequestError("the cursor is not one this API issued") from exc


def _uuid(value: Any) -> UUID:
    try:
        return UUID(str(value))
    except ValueError as exc:
        raise BadRequestError("the cursor is not one this API issued") from exc
