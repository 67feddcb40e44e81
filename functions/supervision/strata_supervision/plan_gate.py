"""The plan gate: every new plan is decided before it can run (PlanCreated -> PlanApproved | PlanRejected).

Until policies and human approvals exist here, the decision is the platform's default policy: a plan is approved
unless its goal asks for a human's approval, which this gate cannot grant yet, so such a plan is rejected with that
reason (fail closed: nothing runs that someone asked to approve). Each plan is decided once, however often its
event arrives."""

from __future__ import annotations

from uuid import uuid4

from strata import peers
from strata.events.outbox import claim_event, unit_of_work
from strata.events.planning import PlanCreated
from strata.events.supervision import PlanApproved, PlanRejected

CONSUMER = "supervision.plan_gate"
NO_APPROVALS = "the goal requires a human's approval, and this deployment has no approval workflow to ask for one"


async def on_plan_created(event: PlanCreated) -> None:
    response = await peers.call(
        "GET", f"/v1/goals/{event.goal_id}", tenant_id=event.tenant_id, correlation_id=event.correlation_id
    )
    if response.status_code != 200:
        raise RuntimeError(f"the goal {event.goal_id} could not be read: {response.status_code}")  # retried
    constraints = response.json().get("constraints") or {}
    common = {
        "tenant_id": event.tenant_id,
        "correlation_id": event.correlation_id,
        "causation_id": str(event.event_id),
        "plan_id": event.plan_id,
        "goal_id": event.goal_id,
        "plan_version": event.version,
        "decided_by": "policy",
        "decision_id": uuid4(),
    }
    async with unit_of_work(event.tenant_id) as uow:
        if not await claim_event(uow.conn, CONSUMER, event):
            return
        if constraints.get("require_approval"):
            await uow.emit(PlanRejected(**common, reasons=[NO_APPROVALS]))
        else:
            await uow.emit(PlanApproved(**common))
