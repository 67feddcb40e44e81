"""Goals and their plans in Postgres: a goal is submitted (row + GoalSubmitted in one transaction), then planned
(a signed plan version + PlanCreated) or rejected with reasons (GoalRejected), each exactly once however often the
event arrives."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from strata import db
from strata.errors import BadRequestError, NotFoundError
from strata.events.outbox import unit_of_work
from strata.events.planning import GoalConstraints, GoalRejected, GoalSubmitted, PlanCreated
from strata.pagination import PageRequest, Where, decode_values, encode_values, fetch_page
from strata.plans import PlanBody, sign, signing_key

GOAL_COLUMNS = (
    "goal_id, text, status, constraints, strategy, submitted_by, reasons, plan_id, run_id, created_at, updated_at"
)
PLAN_COLUMNS = (
    "plan_id, goal_id, version, strategy, template_id, body, signature, estimated_cost_micro_usd,"
    " supersedes_version, created_at"
)


async def submit(
    tenant_id: UUID,
    submitted_by: str,
    correlation_id: str,
    text: str,
    constraints: GoalConstraints,
    strategy: str,
    given_plan: PlanBody | None = None,
) -> dict[str, Any]:
    """Store a submitted goal (with the submitter's own plan, for strategy given) and GoalSubmitted, in one
    transaction."""
    goal_id = uuid4()
    async with unit_of_work(tenant_id) as uow:
        row = await uow.conn.fetchrow(
            f"""INSERT INTO goals (goal_id, tenant_id, text, status, constraints, strategy, submitted_by, given_plan)
                VALUES ($1, $2, $3, 'submitted', $4, $5, $6, $7) RETURNING {GOAL_COLUMNS}""",  # noqa: S608
            goal_id,
            tenant_id,
            text,
            constraints.model_dump(mode="json"),
            strategy,
            submitted_by,
            given_plan.model_dump(mode="json") if given_plan is not None else None,
        )
        await uow.emit(
            GoalSubmitted(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                goal_id=goal_id,
                text=text,
                constraints=constraints,
                submitted_by=submitted_by,
            )
        )
    assert row is not None
    return dict(row)


async def get(tenant_id: UUID, goal_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(f"SELECT {GOAL_COLUMNS} FROM goals WHERE goal_id = $1", goal_id, tenant_id=tenant_id)  # noqa: S608
    if not rows:
        raise NotFoundError(f"no goal {goal_id}")
    return dict(rows[0])


async def list_page(tenant_id: UUID, page: PageRequest, status: str | None) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(status, "status = {}")
    return await fetch_page("goals", GOAL_COLUMNS, "goal_id", where, page)


async def plans_of(tenant_id: UUID, goal_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    """A goal's plans, newest version first, cursor paginated."""
    await get(tenant_id, goal_id)
    args: list[Any] = [goal_id]
    before = ""
    if page.cursor:
        (version,) = decode_values(page.cursor, 1)
        if not isinstance(version, int):
            raise BadRequestError("the cursor is not one this API issued")
        args.append(version)
        before = " AND version < $2"
    args.append(page.limit + 1)
    rows = await db.fetch(
        f"SELECT {PLAN_COLUMNS} FROM plans WHERE goal_id = $1{before} "  # noqa: S608 - constant columns
        f"ORDER BY version DESC LIMIT ${len(args)}",
        *args,
        tenant_id=tenant_id,
    )
    items = [dict(r) for r in rows[: page.limit]]
    more = len(rows) > page.limit
    return items, encode_values([items[-1]["version"]]) if more else None


async def plan(tenant_id: UUID, plan_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(f"SELECT {PLAN_COLUMNS} FROM plans WHERE plan_id = $1", plan_id, tenant_id=tenant_id)  # noqa: S608
    if not rows:
        raise NotFoundError(f"no plan {plan_id}")
    return dict(rows[0])


async def record_plan(
    event: GoalSubmitted, body: PlanBody, strategy: str, template_id: UUID | None
) -> dict[str, Any] | None:
    """Store plan version 1 of a submitted goal, signed, with PlanCreated, and count the use of the template it was
    made from; None when the goal was planned (or rejected) meanwhile, by another delivery of the same event."""
    document = body.model_dump(mode="json")
    signature = sign(document, signing_key())
    cost = sum(t.estimated_cost_micro_usd for t in body.tasks)
    plan_id = uuid4()
    async with unit_of_work(event.tenant_id) as uow:
        claimed = await uow.conn.fetchval(
            "UPDATE goals SET status = 'planned', plan_id = $2, updated_at = now() "
            "WHERE goal_id = $1 AND status = 'submitted' RETURNING true",
            event.goal_id,
            plan_id,
        )
        if not claimed:
            return None
        row = await uow.conn.fetchrow(
            f"""INSERT INTO plans (plan_id, tenant_id, goal_id, version, strategy, template_id, body, signature,
                                   estimated_cost_micro_usd)
                VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8) RETURNING {PLAN_COLUMNS}""",  # noqa: S608
            plan_id,
            event.tenant_id,
            event.goal_id,
            strategy,
            template_id,
            document,
            signature,
            cost,
        )
        if template_id is not None:  # a use, not an edit: the template's version (its ETag) stays
            await uow.conn.execute(
                "UPDATE plan_templates SET used_count = used_count + 1, last_used_at = now() WHERE template_id = $1",
                template_id,
            )
        await uow.emit(
            PlanCreated(
                tenant_id=event.tenant_id,
                correlation_id=event.correlation_id,
                causation_id=str(event.event_id),
                plan_id=plan_id,
                goal_id=event.goal_id,
                version=1,
                strategy=strategy,
                task_count=len(body.tasks),
                estimated_cost_micro_usd=cost,
                signature=signature,
            )
        )
    assert row is not None
    return dict(row)


async def reject(event: GoalSubmitted, reasons: list[str]) -> bool:
    """Mark a submitted goal rejected with GoalRejected; False when it was settled meanwhile."""
    async with unit_of_work(event.tenant_id) as uow:
        claimed = await uow.conn.fetchval(
            "UPDATE goals SET status = 'rejected', reasons = $2, updated_at = now() "
            "WHERE goal_id = $1 AND status = 'submitted' RETURNING true",
            event.goal_id,
            reasons[:50],
        )
        if not claimed:
            return False
        await uow.emit(
            GoalRejected(
                tenant_id=event.tenant_id,
                correlation_id=event.correlation_id,
                causation_id=str(event.event_id),
                goal_id=event.goal_id,
                reasons=[r[:2000] for r in reasons[:50]],
            )
        )
    return True


async def pending(tenant_id: UUID, goal_id: UUID) -> dict[str, Any] | None:
    """The goal (with its given plan, if any) if it still waits for planning."""
    rows = await db.fetch(
        f"SELECT {GOAL_COLUMNS}, given_plan FROM goals WHERE goal_id = $1 AND status = 'submitted'",  # noqa: S608
        goal_id,
        tenant_id=tenant_id,
    )
    return dict(rows[0]) if rows else None


async def record_replan(
    tenant_id: UUID,
    correlation_id: str,
    causation_id: str,
    goal_id: UUID,
    failed_plan: dict[str, Any],
    body: PlanBody,
    strategy: str,
) -> dict[str, Any] | None:
    """Store the next version of a goal's plan after its run failed, signed, with PlanCreated naming the version it
    supersedes; None when the goal moved on meanwhile (another delivery of the failure replanned it)."""
    document = body.model_dump(mode="json")
    signature = sign(document, signing_key())
    cost = sum(t.estimated_cost_micro_usd for t in body.tasks)
    plan_id = uuid4()
    version = failed_plan["version"] + 1
    async with unit_of_work(tenant_id) as uow:
        claimed = await uow.conn.fetchval(
            "UPDATE goals SET status = 'planned', plan_id = $2, run_id = NULL, updated_at = now() "
            "WHERE goal_id = $1 AND plan_id = $3 AND status IN ('planned', 'running') RETURNING true",
            goal_id,
            plan_id,
            failed_plan["plan_id"],
        )
        if not claimed:
            return None
        row = await uow.conn.fetchrow(
            f"""INSERT INTO plans (plan_id, tenant_id, goal_id, version, strategy, body, signature,
                                   estimated_cost_micro_usd, supersedes_version)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {PLAN_COLUMNS}""",  # noqa: S608
            plan_id,
            tenant_id,
            goal_id,
            version,
            strategy,
            document,
            signature,
            cost,
            failed_plan["version"],
        )
        await uow.emit(
            PlanCreated(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                causation_id=causation_id,
                plan_id=plan_id,
                goal_id=goal_id,
                version=version,
                strategy=strategy,
                task_count=len(body.tasks),
                estimated_cost_micro_usd=cost,
                signature=signature,
                supersedes_version=failed_plan["version"],
            )
        )
    assert row is not None
    return dict(row)
