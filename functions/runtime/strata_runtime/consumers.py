"""L02's event entry points: an approved plan starts its run; the reaper's schedule."""

from __future__ import annotations

from uuid import UUID, uuid5

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from strata import peers
from strata.events.supervision import ApprovalDecided, PlanApproved, SuspensionChanged
from strata.plans import PlanBody, signing_key, verify
from strata_runtime import runs

logger = Logger(child=True)
RUN_NAMESPACE = UUID("6f1d9a52-52a8-4c55-9a0e-3c1d2b7e8f10")  # run ids derived from plan ids


async def on_plan_approved(event: PlanApproved) -> None:
    """Start the approved plan's run (once: a redelivered event finds the run there). The plan is read from L05
    and run only if its signature verifies; the goal's constraints bound the run."""
    plan = await peers.get_for_event(event, f"/v1/plans/{event.plan_id}")
    goal = await peers.get_for_event(event, f"/v1/goals/{event.goal_id}")
    try:
        body = PlanBody.model_validate(plan["body"])
    except ValidationError as exc:  # planning stored it, so this is a contract break: retried, then dead-lettered
        raise RuntimeError(f"plan {event.plan_id} does not fit the plan contract: {exc}") from exc
    signature_ok = verify(plan["body"], plan["signature"], signing_key())
    if not signature_ok:
        logger.error("a plan's signature does not verify; its run fails", extra={"plan_id": str(event.plan_id)})
    constraints = goal.get("constraints") or {}
    run_id = uuid5(RUN_NAMESPACE, str(event.plan_id))  # one run per plan, the same id however often this runs
    if signature_ok and constraints.get("budget_micro_usd") is not None:
        await _budget(event, run_id, int(constraints["budget_micro_usd"]))
    await runs.start(
        run_id=run_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        causation_id=str(event.event_id),
        plan=plan,
        body=body,
        constraints=constraints,
        signature_ok=signature_ok,
        submitted_by=str(goal.get("submitted_by") or ""),
    )


async def _budget(event: PlanApproved, run_id: UUID, limit_micro_usd: int) -> None:
    """The goal's budget as L04's budget of the run: every model call of the run is reserved against it, and one
    that would pass it is refused (402) before it is made."""
    body = {"scope": "run", "scope_id": str(run_id), "period": "total", "limit_micro_usd": limit_micro_usd}
    response = await peers.call(
        "POST", "/v1/budgets", tenant_id=event.tenant_id, correlation_id=event.correlation_id, json=body
    )
    if response.status_code not in (201, 409):  # 409: made by an earlier delivery of this event
        raise RuntimeError(f"the run's budget could not be set: {response.status_code} {response.text[:300]}")


async def on_approval_decided(event: ApprovalDecided) -> None:
    """A tool call's approval was decided: the tasks waiting for it go on (the call's answer follows the outcome:
    made if approved, refused with the approvers' reason if not). Plans' approvals are supervision's own."""
    if event.subject_type != "tool_call":
        return
    resumed = await runs.resume_approved(event.tenant_id, event.approval_id, event.correlation_id, str(event.event_id))
    logger.info("approval decided", extra={"approval_id": str(event.approval_id), "resumed_tasks": resumed})


async def on_suspension_changed(event: SuspensionChanged) -> None:
    """The kill switch: pause what a suspension covers, resume it when it is lifted."""
    changed = await runs.follow_suspension(
        event.tenant_id, event.agent_id, event.suspended, event.reason or "suspended", event.correlation_id
    )
    logger.info("suspension followed", extra={"suspended": event.suspended, "runs": changed})


async def reap_runs() -> dict[str, int]:
    """The reaper's schedule."""
    return await runs.reap()
