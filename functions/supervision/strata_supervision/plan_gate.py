"""The plan gate: every new plan is decided before it can run (PlanCreated -> PlanApproved | ApprovalRequested |
PlanRejected). The goal's submitter is the principal, asking both `plan.approve` and `run.start` with the plan
described in the context (its tasks, tools and agents, the goal's constraints); a deny rejects the plan with the
deciding policies' reasons, an approval-requiring permit opens an approval whose outcome approves or rejects it
later (see approvals), and a suspension of the tenant or of an agent in the plan rejects it. Each plan is decided
once, however often its event arrives."""

from __future__ import annotations

from typing import Any

from strata import peers
from strata.decisions import DecisionRequest, EntityRef, Subject
from strata.events.outbox import claim_event, unit_of_work
from strata.events.planning import PlanCreated
from strata.events.supervision import PlanApproved, PlanRejected
from strata_supervision import decider

CONSUMER = "supervision.plan_gate"


def request_for(event: PlanCreated, goal: dict[str, Any], plan: dict[str, Any]) -> DecisionRequest:
    constraints = goal.get("constraints") or {}
    tasks = plan["body"]["tasks"]
    text = str(goal.get("text", ""))[:2000]
    context: dict[str, Any] = {
        "goal": text,
        "strategy": str(plan.get("strategy") or goal.get("strategy") or ""),
        "task_count": len(tasks),
        "tools": sorted({t["tool"] for t in tasks if t.get("tool")}),
        "agents": sorted({str(t["agent_id"]) for t in tasks if t.get("agent_id")}),
        "require_approval": bool(constraints.get("require_approval")),
        "budget_micro_usd": int(constraints.get("budget_micro_usd") or 0),
    }
    submitter = str(goal.get("submitted_by") or "")
    return DecisionRequest(
        action="plan.approve",
        principal=EntityRef(type="Principal", id=submitter or "unknown"),
        resource=EntityRef(type="Tenant", id=str(event.tenant_id)),
        context=context,
        subject=Subject(type="plan", id=str(event.plan_id)),
        what=f"run plan v{event.version} ({len(tasks)} tasks) for the goal: {text[:300]}",
        details={"plan_id": str(event.plan_id), "goal_id": str(event.goal_id), "plan_version": event.version},
        on_behalf_of=submitter,
    )


async def on_plan_created(event: PlanCreated) -> None:
    goal = await peers.get_for_event(event, f"/v1/goals/{event.goal_id}")
    plan = await peers.get_for_event(event, f"/v1/plans/{event.plan_id}")
    request = request_for(event, goal, plan)
    principal = await decider.resolve(event.tenant_id, request.principal, event.correlation_id)
    common = {
        "tenant_id": event.tenant_id,
        "correlation_id": event.correlation_id,
        "causation_id": str(event.event_id),
        "plan_id": event.plan_id,
        "goal_id": event.goal_id,
        "plan_version": event.version,
        "decided_by": "policy",
    }
    async with unit_of_work(event.tenant_id) as uow:
        if not await claim_event(uow.conn, CONSUMER, event):
            return
        answer = await decider.decide(
            uow,
            event.tenant_id,
            event.correlation_id,
            request,
            principal,
            "supervision.plan_gate",
            ("run.start", "plan.approve"),
        )
        if answer["outcome"] == "allow":
            await uow.emit(PlanApproved(**common, decision_id=answer["decision_id"]))
        elif answer["outcome"] == "deny":
            reasons = [r[:2000] for r in answer["reasons"]][:50] or ["denied by policy"]
            await uow.emit(PlanRejected(**common, decision_id=answer["decision_id"], reasons=reasons))
        # approval_required: the approval's outcome approves or rejects the plan
