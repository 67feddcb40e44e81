"""Scheduled goals: create, read, change, pause, resume and delete them; the sync job; a tenant's erasure.

Every write goes to the row first (the source of truth, marked unsynced), then to EventBridge Scheduler, then marks
the row synced. When the Scheduler call fails the write is undone (a new schedule is removed, a changed one gets its
previous definition back, as a new version) and the call's error answers the request (503, or 422 when Scheduler
refuses the schedule). Whatever a crash or a second failure leaves unsynced, the sync job finishes a minute later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import db
from strata import schedule_expressions as expressions
from strata.errors import ConflictError, InvalidInputError, NotFoundError, ProblemError
from strata.etags import check_version, etag
from strata.pagination import PageRequest
from strata_integration.schedules import scheduler, store
from strata_integration.schedules.settings import schedule_settings

logger = Logger(child=True)

TIMING = ("expression", "timezone", "start_at", "end_at")  # what decides when a schedule fires


def now() -> datetime:
    return datetime.now(UTC)


def _ceil_second(moment: datetime) -> datetime:
    """Scheduler's times are whole seconds: a rate created now starts at the next one."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def next_fire_times(schedule: dict[str, Any], moment: datetime, count: int) -> list[datetime]:
    """When the schedule fires next (nothing while it is paused)."""
    if schedule["state"] != "enabled" or schedule["sync_status"] == "deleting":
        return []
    return expressions.next_fire_times(
        expressions.parse(schedule["expression"]),
        expressions.zone(schedule["timezone"]),
        after=moment,
        count=count,
        start=schedule["start_at"],
        end=schedule["end_at"],
        anchor=schedule["rate_anchor"],
    )


def present(schedule: dict[str, Any], count: int | None = None) -> dict[str, Any]:
    """The schedule as the API shows it: with its next fire times."""
    shown = schedule_settings().schedules_next_times if count is None else count
    return {**schedule, "next_fire_times": next_fire_times(schedule, now(), shown)}


def _check(schedule: dict[str, Any], moment: datetime, *, timing_changed: bool) -> None:
    """422, naming the fields at fault, for a definition EventBridge Scheduler would refuse or that could never
    fire (the expression and time zone themselves are checked by the request's model)."""
    errors: list[tuple[list[str], str]] = []
    try:
        expression = expressions.parse(schedule["expression"])
        expressions.zone(schedule["timezone"])
    except expressions.ScheduleExpressionError as exc:
        raise InvalidInputError(str(exc)) from exc
    one_time = isinstance(expression, expressions.AtExpression)
    if one_time:
        errors += [
            ([field], f"{field} does not apply to at(): it fires once, at its time")
            for field in ("start_at", "end_at")
            if schedule[field] is not None
        ]
    elif None not in (schedule["start_at"], schedule["end_at"]) and schedule["end_at"] <= schedule["start_at"]:
        errors.append((["end_at"], "end_at is after start_at"))
    if not one_time and (schedule["goal"].get("constraints") or {}).get("deadline") is not None:
        errors.append(
            (["goal", "constraints", "deadline"], "the goals of a recurring schedule cannot share one fixed deadline")
        )
    if not errors and timing_changed and scheduler.next_time(schedule, moment) is None:
        if one_time:
            message = f"{expression.text} in {schedule['timezone']} is in the past"
        else:
            message = "the schedule would never fire: none of its times is left (within start_at and end_at)"
        errors.append((["expression"], message))
    if errors:
        raise InvalidInputError(
            "; ".join(message for _, message in errors),
            errors=[{"loc": ["body", *loc], "msg": message, "type": "value_error"} for loc, message in errors],
        )


async def create(tenant_id: UUID, principal_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A new schedule, in the row and then in Scheduler (201), or nothing (the Scheduler call's error)."""
    from asyncpg import UniqueViolationError

    settings = schedule_settings()
    scheduler.require_configured()
    moment = now()
    schedule = {
        **fields,
        "schedule_id": uuid4(),
        "rate_anchor": fields["start_at"] or _ceil_second(moment),
        "submits_as": principal_id,
        "created_by": principal_id,
    }
    _check(schedule, moment, timing_changed=True)
    try:
        async with db.transaction(tenant_id) as conn:
            if await store.count(conn) >= settings.schedules_per_tenant:
                raise ConflictError(f"the tenant has {settings.schedules_per_tenant} schedules, the most it may have")
            created = await store.insert(conn, tenant_id, schedule)
    except UniqueViolationError as exc:
        raise ConflictError(f"a schedule named {fields['name']!r} exists") from exc
    try:
        await scheduler.apply(tenant_id, created)
    except ProblemError:
        await _discard(tenant_id, created["schedule_id"])
        raise
    return await _synced(tenant_id, created)


async def _live(conn: Any, schedule_id: UUID) -> dict[str, Any]:
    """The schedule, locked for a write (404 when it does not exist or is being deleted)."""
    current = await store.get(conn, schedule_id, for_update=True)
    if current is None or current["sync_status"] == "deleting":
        raise NotFoundError(f"no schedule {schedule_id}")
    return current


async def get(tenant_id: UUID, schedule_id: UUID) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        found = await store.get(conn, schedule_id)
    if found is None or found["sync_status"] == "deleting":
        raise NotFoundError(f"no schedule {schedule_id}")
    return found


async def list_page(tenant_id: UUID, page: PageRequest, state: str | None) -> tuple[list[dict[str, Any]], str | None]:
    items, next_cursor = await store.list_page(tenant_id, page, state)
    return [present(item) for item in items], next_cursor


async def runs(tenant_id: UUID, schedule_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    await get(tenant_id, schedule_id)
    return await store.runs_page(tenant_id, schedule_id, page)


async def update(
    tenant_id: UUID, principal_id: str, schedule_id: UUID, changes: dict[str, Any], expected_version: int | None
) -> dict[str, Any]:
    """Change the schedule's definition (If-Match honoured); whoever changes its goal is whom it is submitted for."""
    from asyncpg import UniqueViolationError

    moment = now()
    try:
        async with db.transaction(tenant_id) as conn:
            current = await _live(conn, schedule_id)
            check_version(expected_version, current["version"])
            merged = {**current, **changes}
            if "goal" in changes:
                merged["submits_as"] = principal_id
            if merged["expression"] != current["expression"] or merged["start_at"] != current["start_at"]:
                merged["rate_anchor"] = merged["start_at"] or _ceil_second(moment)
            _check(merged, moment, timing_changed=any(merged[k] != current[k] for k in TIMING))
            changed = {k: merged[k] for k in store.DEFINITION if merged[k] != current[k]}
            if not changed:
                return current
            updated = await store.update(conn, schedule_id, changed)
    except UniqueViolationError as exc:
        raise ConflictError(f"a schedule named {changes.get('name')!r} exists") from exc
    return await _push(tenant_id, current, updated)


async def set_state(tenant_id: UUID, schedule_id: UUID, state: str, expected_version: int | None) -> dict[str, Any]:
    """Pause (Scheduler holds it DISABLED) or resume (ENABLED) the schedule; a no-op when it is so already."""
    moment = now()
    async with db.transaction(tenant_id) as conn:
        current = await _live(conn, schedule_id)
        check_version(expected_version, current["version"])
        if current["state"] == state:
            return current
        if scheduler.next_time(current, moment) is None:
            verb = "pause" if state == "paused" else "resume"
            raise ConflictError(f"the schedule has fired its last time: change its expression or end_at to {verb} it")
        updated = await store.update(conn, schedule_id, {"state": state})
    return await _push(tenant_id, current, updated)


async def delete(tenant_id: UUID, schedule_id: UUID, expected_version: int | None) -> None:
    """Remove the schedule from Scheduler, then its row and history (If-Match honoured)."""
    async with db.transaction(tenant_id) as conn:
        current = await _live(conn, schedule_id)
        check_version(expected_version, current["version"])
        await store.set_sync_status(conn, schedule_id, "deleting")
    try:
        await scheduler.remove(schedule_id)
    except ProblemError:
        async with db.transaction(tenant_id) as conn:
            await store.set_sync_status(conn, schedule_id, current["sync_status"], when="deleting")
        raise
    async with db.transaction(tenant_id) as conn:
        await store.delete(conn, schedule_id)


async def _synced(tenant_id: UUID, schedule: dict[str, Any]) -> dict[str, Any]:
    """Record that Scheduler holds this version (unless a later write took over: it records its own)."""
    async with db.transaction(tenant_id) as conn:
        marked = await store.set_sync_status(
            conn, schedule["schedule_id"], "synced", version=schedule["version"], when="pending"
        )
        if marked is not None:
            return marked
        return await store.get(conn, schedule["schedule_id"]) or schedule


async def _push(tenant_id: UUID, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Scheduler gets the changed schedule; if it cannot, the change is undone (as a new version) and the call's
    error answers the request."""
    try:
        await scheduler.apply(tenant_id, after)
    except ProblemError as exc:
        restored = await _restore(tenant_id, before, after)
        if restored is None:
            raise
        detail = f"{exc.detail}; the schedule is unchanged (now version {restored['version']})"
        raise type(exc)(
            detail, headers=exc.headers, **{**exc.extra, "current_etag": etag(restored["version"])}
        ) from exc
    return await _synced(tenant_id, after)


async def _restore(tenant_id: UUID, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """Put back the definition a failed change replaced (unless another write came since); None when that did not
    happen (the sync job then brings Scheduler in line with the row)."""
    back = {k: before[k] for k in store.DEFINITION if before[k] != after[k]}
    try:
        async with db.transaction(tenant_id) as conn:
            current = await store.get(conn, after["schedule_id"], for_update=True)
            if current is None or current["version"] != after["version"]:
                return None
            restored = await store.update(conn, after["schedule_id"], back)
        try:
            await scheduler.apply(tenant_id, restored)
        except ProblemError:
            return restored  # Scheduler may still hold the previous definition, or the failed one: the sync job knows
        return await _synced(tenant_id, restored)
    except Exception:  # the undo is best effort: what it leaves unsynced, the sync job finishes
        logger.exception("undoing a schedule change failed", extra={"schedule_id": str(after["schedule_id"])})
        return None


async def _discard(tenant_id: UUID, schedule_id: UUID) -> None:
    """Undo a create whose Scheduler call failed: out of Scheduler (in case the call took effect after all), then
    the row. What fails here stays marked for deletion, which the sync job finishes."""
    try:
        async with db.transaction(tenant_id) as conn:
            await store.set_sync_status(conn, schedule_id, "deleting")
        await scheduler.remove(schedule_id)
        async with db.transaction(tenant_id) as conn:
            await store.delete(conn, schedule_id)
    except Exception:  # best effort, see above
        logger.exception("undoing a schedule's creation failed", extra={"schedule_id": str(schedule_id)})


async def sync_unsynced() -> dict[str, int]:
    """The sync job: every schedule a write left unsynced for a while (a crash between the row and Scheduler, or a
    failed undo) is brought into Scheduler as the row has it, or out of it when it was being deleted."""
    settings = schedule_settings()
    done = {"synced": 0, "deleted": 0, "failed": 0}
    if not settings.configured():
        return done
    for tenant_id, schedule_id in await store.unsynced(settings.schedules_sync_after_s):
        try:
            # the row stays locked while Scheduler is called, so a write arriving meanwhile waits for this one
            async with db.transaction(tenant_id) as conn:
                row = await store.get(conn, schedule_id, for_update=True)
                if row is None or row["sync_status"] == "synced":
                    continue
                if row["sync_status"] == "deleting":
                    await scheduler.remove(schedule_id)
                    await store.delete(conn, schedule_id)
                    done["deleted"] += 1
                else:
                    await scheduler.apply(tenant_id, row)
                    await store.set_sync_status(conn, schedule_id, "synced", version=row["version"])
                    done["synced"] += 1
        except ProblemError as exc:
            logger.warning(
                "a schedule could not be synced", extra={"schedule_id": str(schedule_id), "error": exc.detail}
            )
            done["failed"] += 1
    return done


async def erase_tenant_schedules(tenant_id: UUID) -> dict[str, int]:
    """The tenant's schedules removed from EventBridge Scheduler, their rows marked so that no firing submits a goal
    meanwhile (strata.tenant_data's `erase_elsewhere` hook: the rows go afterwards)."""
    removed = 0
    for schedule_id in await store.mark_tenant_deleting(tenant_id):
        removed += await scheduler.remove(schedule_id)
    return {"scheduler:schedules": removed}


async def delete_tenant_schedules(tenant_id: UUID) -> dict[str, int]:
    """Everything the tenant has in scheduled goals: its schedules in Scheduler, then its rows (schedules and their
    history)."""
    erased = await erase_tenant_schedules(tenant_id)
    return {**erased, **await store.delete_tenant(tenant_id)}
