"""Human approvals: votes through the API, quorum per level, escalation on the deadline, and the outcome
announced (ApprovalDecided; for a plan also PlanApproved or PlanRejected, since the plan gate is this layer's).

Rules: the principal the work is for cannot approve it; at each level only its approvers vote (`*`: anyone holding
approvals:decide), each once; the level's quorum of approvals approves; a single rejection by an approver rejects
(a veto); when the level's deadline passes the next level is asked, and after the last one the request expires
(rejected). Each vote, escalation and outcome is written to the audit log with the change."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import db
from strata.auth import Principal
from strata.errors import ConflictError, ForbiddenError, NotFoundError
from strata.events.outbox import UnitOfWork, unit_of_work
from strata.events.supervision import ApprovalDecided, ApprovalRequested, PlanApproved, PlanRejected
from strata.pagination import PageRequest, Where, fetch_page
from strata_supervision import audit
from strata_supervision.settings import supervision_settings

logger = Logger(child=True)
COLUMNS = (
    "approval_id, subject_type, subject_id, what, why, requested_by, decision_id, details, levels, level, deadline,"
    " status, decided_by, comment, version, created_at, updated_at, decided_at, correlation_id"
)


async def _votes(conn: Any, approval_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT level, principal_id, vote, comment, created_at FROM approval_votes WHERE approval_id = $1 "
        "ORDER BY created_at, principal_id",
        approval_id,
    )
    return [dict(r) for r in rows]


def _view(row: Any, votes: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The approval with its current level's approvers and quorum; with its votes when they were read."""
    approval = dict(row)
    level = approval["levels"][approval["level"]]
    approvals = None
    if votes is not None:
        approvals = sum(1 for v in votes if v["level"] == approval["level"] and v["vote"] == "approve")
    return {
        **approval,
        "approvers": level["approvers"],
        "quorum": level["quorum"],
        "approvals": approvals,
        "votes": votes,
    }


async def get(tenant_id: UUID, approval_id: UUID) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(f"SELECT {COLUMNS} FROM approvals WHERE approval_id = $1", approval_id)  # noqa: S608
        if row is None:
            raise NotFoundError(f"no approval {approval_id}")
        return _view(row, await _votes(conn, approval_id))


async def list_page(
    tenant_id: UUID, status: str | None, subject_type: str | None, page: PageRequest
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(status, "status = {}").add_if(subject_type, "subject_type = {}")
    items, cursor = await fetch_page("approvals", COLUMNS, "approval_id", where, page)
    return [_view(i, None) for i in items], cursor


async def vote(
    tenant_id: UUID, approval_id: UUID, principal: Principal, choice: str, comment: str, correlation_id: str
) -> dict[str, Any]:
    """Record the principal's vote and resolve the approval when it decides it."""
    async with unit_of_work(tenant_id) as uow:
        row = await uow.conn.fetchrow(
            f"SELECT {COLUMNS} FROM approvals WHERE approval_id = $1 FOR UPDATE",  # noqa: S608 - constant columns
            approval_id,
        )
        if row is None:
            raise NotFoundError(f"no approval {approval_id}")
        if row["status"] != "pending":
            raise ConflictError(f"the approval is {row['status']} already", approval_status=row["status"])
        who = principal.principal_id
        if who == row["requested_by"]:
            raise ForbiddenError("the work this approval is about is yours: someone else must approve it")
        level = row["levels"][row["level"]]
        if level["approvers"] != ["*"] and who not in level["approvers"]:
            named = ", ".join(level["approvers"])
            raise ForbiddenError(f"you are not an approver at this level ({row['level']}); its approvers: {named}")
        inserted = await uow.conn.fetchval(
            """INSERT INTO approval_votes (tenant_id, approval_id, level, principal_id, vote, comment)
               VALUES (strata_tenant(), $1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
            approval_id,
            row["level"],
            who,
            choice,
            comment,
        )
        if not inserted:
            raise ConflictError("you have voted on this approval at this level already")
        await audit.append(
            uow.conn,
            tenant_id,
            "approval.vote",
            who,
            {"approval_id": str(approval_id), "level": row["level"], "vote": choice, "comment": comment},
        )
        votes = await _votes(uow.conn, approval_id)
        approvers = [v["principal_id"] for v in votes if v["level"] == row["level"] and v["vote"] == "approve"]
        if choice == "reject":
            row = await _resolve(uow, tenant_id, correlation_id, row, "rejected", [who], comment, who)
        elif len(approvers) >= level["quorum"]:
            row = await _resolve(uow, tenant_id, correlation_id, row, "approved", approvers, comment, who)
        return _view(row, votes)


async def _resolve(
    uow: UnitOfWork,
    tenant_id: UUID,
    correlation_id: str,
    row: Any,
    outcome: str,
    decided_by: list[str],
    comment: str,
    actor: str,
) -> Any:
    resolved = await uow.conn.fetchrow(
        f"""UPDATE approvals SET status = $2, decided_by = $3, comment = $4, decided_at = now(), updated_at = now(),
                   version = version + 1
            WHERE approval_id = $1 RETURNING {COLUMNS}""",  # noqa: S608 - constant columns
        row["approval_id"],
        outcome,
        decided_by,
        comment[:2000],
    )
    common = {"tenant_id": tenant_id, "correlation_id": row["correlation_id"] or correlation_id}
    await uow.emit(
        ApprovalDecided(
            **common,
            approval_id=row["approval_id"],
            subject_type=row["subject_type"],
            subject_id=row["subject_id"],
            outcome=outcome,
            decided_by=decided_by,
            comment=comment[:2000],
        )
    )
    if row["subject_type"] == "plan":  # the plan gate's own outcome
        details = row["details"]
        plan = {
            "plan_id": UUID(details["plan_id"]),
            "goal_id": UUID(details["goal_id"]),
            "plan_version": int(details["plan_version"]),
            "decided_by": "human",
            "decision_id": uuid4(),
        }
        if outcome == "approved":
            await uow.emit(PlanApproved(**common, **plan))
        else:
            who = f" by {', '.join(decided_by)}" if decided_by else ""
            reason = f"the plan's approval was {outcome}{who}" + (f": {comment}" if comment else "")
            await uow.emit(PlanRejected(**common, **plan, reasons=[reason[:2000]]))
    await audit.append(
        uow.conn,
        tenant_id,
        f"approval.{outcome}",
        actor,
        {
            "approval_id": str(row["approval_id"]),
            "subject": f"{row['subject_type']}:{row['subject_id']}",
            "decided_by": decided_by,
            "comment": comment[:500],
        },
    )
    return resolved


async def expire_due() -> dict[str, int]:
    """The schedule: each pending approval past its deadline is escalated to its next level, or expires."""
    due = await db.fetch(
        "SELECT tenant_id, approval_id FROM approvals WHERE status = 'pending' AND deadline < now() "
        "ORDER BY deadline LIMIT $1",
        supervision_settings().approval_expiry_batch,
    )
    escalated = expired = 0
    for item in due:
        async with unit_of_work(item["tenant_id"]) as uow:
            row = await uow.conn.fetchrow(
                f"SELECT {COLUMNS} FROM approvals WHERE approval_id = $1 AND status = 'pending' "  # noqa: S608
                "AND deadline < now() FOR UPDATE",
                item["approval_id"],
            )
            if row is None:
                continue  # decided meanwhile
            if row["level"] + 1 < len(row["levels"]):
                await _escalate(uow, item["tenant_id"], row)
                escalated += 1
            else:
                await _resolve(
                    uow, item["tenant_id"], "", row, "expired", [], "no decision before the deadline", "supervision"
                )
                expired += 1
    if escalated or expired:
        logger.info("approvals past their deadline", extra={"escalated": escalated, "expired": expired})
    return {"escalated": escalated, "expired": expired}


async def _escalate(uow: UnitOfWork, tenant_id: UUID, row: Any) -> None:
    level = row["level"] + 1
    spec = row["levels"][level]
    moved = await uow.conn.fetchrow(
        """UPDATE approvals SET level = $2, deadline = now() + make_interval(secs => $3), updated_at = now(),
                  version = version + 1
           WHERE approval_id = $1 RETURNING deadline""",
        row["approval_id"],
        level,
        spec["timeout_s"],
    )
    await uow.emit(
        ApprovalRequested(
            tenant_id=tenant_id,
            correlation_id=row["correlation_id"] or str(row["approval_id"]),
            approval_id=row["approval_id"],
            subject_type=row["subject_type"],
            subject_id=row["subject_id"],
            what=row["what"],
            reason=f"escalated: level {row['level']} did not decide before its deadline. {row['why']}"[:2000],
            deadline=moved["deadline"],
            required_approvals=spec["quorum"],
            approvers=spec["approvers"],
            level=level,
        )
    )
    await audit.append(
        uow.conn,
        tenant_id,
        "approval.escalated",
        "supervision",
        {"approval_id": str(row["approval_id"]), "level": level, "approvers": spec["approvers"]},
    )
