"""Deciding a request: the tenant's policy set at its current revision (compiled once per revision and
environment), the kill switch, the principal resolved (an agent must exist in L01; anything unknown is denied),
Cedar's verdict, then for what needs a human the approval of that subject (found, or opened and announced).
Every decision is recorded with the policies that decided it and appended to the audit log, in one transaction
with whatever it opened."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID, uuid4

from strata import peers
from strata.decisions import DecisionRequest, EntityRef
from strata.errors import DependencyUnavailableError, InvalidInputError
from strata.events.outbox import UnitOfWork
from strata.events.supervision import ApprovalRequested
from strata_supervision import audit, engine, policies
from strata_supervision.engine import CompiledSet, Statement, Verdict
from strata_supervision.schema import uid
from strata_supervision.settings import supervision_settings

CONTEXT_DEFAULTS: dict[str, dict[str, Any]] = {
    "tool.invoke": {"run_id": "", "task_id": "", "arguments": ""},
    "model.call": {"run_id": "", "task_id": "", "purpose": ""},
    "plan.approve": {
        "goal": "",
        "strategy": "",
        "task_count": 0,
        "tools": [],
        "agents": [],
        "require_approval": False,
        "budget_micro_usd": 0,
    },
}
CONTEXT_DEFAULTS["run.start"] = CONTEXT_DEFAULTS["plan.approve"]
RESOURCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "Tool": {"source": "builtin", "side_effects": False, "requires_approval": False},
    "Model": {"provider": ""},
    "Tenant": {},
}
RESOURCE_OF = {"tool.invoke": "Tool", "model.call": "Model", "plan.approve": "Tenant", "run.start": "Tenant"}

_sets: dict[UUID, CompiledSet] = {}
_agents: dict[tuple[UUID, str], tuple[float, dict[str, Any] | None]] = {}


async def compiled_set(conn: Any, tenant_id: UUID) -> CompiledSet:
    """The tenant's policy set and suspensions at the current revision."""
    revision = await conn.fetchval("SELECT revision FROM policy_revisions") or 0
    cached = _sets.get(tenant_id)
    if cached is not None and cached.revision == revision:
        return cached
    row = await conn.fetchrow(  # the revision with what it names, read in one snapshot
        """SELECT coalesce((SELECT revision FROM policy_revisions), 0) AS revision,
                  (SELECT coalesce(json_agg(s), '[]') FROM (SELECT scope, agent_id, reason FROM suspensions
                                                            WHERE lifted_at IS NULL) s) AS suspensions"""
    )
    compiled = engine.compile_set(row["revision"], await policies.active(conn))
    for suspension in row["suspensions"]:
        if suspension["scope"] == "tenant":
            compiled.suspended_tenant = suspension["reason"]
        else:
            compiled.suspended_agents[str(suspension["agent_id"])] = suspension["reason"]
    _sets[tenant_id] = compiled
    return compiled


async def _agent(tenant_id: UUID, agent_id: str, correlation_id: str) -> dict[str, Any] | None:
    """The agent as L01 has it (None: no such agent), cached briefly."""
    try:
        UUID(agent_id)
    except ValueError:
        return None
    now = time.monotonic()
    hit = _agents.get((tenant_id, agent_id))
    if hit is not None and hit[0] > now:
        return hit[1]
    response = await peers.call(
        "GET", f"/v1/agents/{agent_id}", tenant_id=tenant_id, correlation_id=correlation_id, timeout_s=5.0
    )
    if response.status_code == 404:
        agent = None
    elif response.status_code == 200:
        agent = response.json()
    else:
        raise DependencyUnavailableError(f"the agent registry (L01) answered {response.status_code}")
    if len(_agents) > 10_000:
        _agents.clear()
    _agents[(tenant_id, agent_id)] = (now + supervision_settings().supervision_agent_cache_s, agent)
    return agent


async def resolve(tenant_id: UUID, principal: EntityRef, correlation_id: str) -> dict[str, Any] | None:
    """The principal as a Cedar entity, or None when it is not one the tenant has (an agent is read from L01, so
    callers resolve it before opening a transaction)."""
    tenant = [uid("Tenant", str(tenant_id))]
    if principal.type == "Agent":
        agent = await _agent(tenant_id, principal.id, correlation_id)
        if agent is None:
            return None
        attrs = {
            "name": str(agent.get("name", "")),
            "status": str(agent.get("status", "")),
            "version": int(agent.get("version", 0)),
            "capabilities": [str(c) for c in agent.get("capabilities", [])],
        }
        return {"uid": uid("Agent", principal.id), "attrs": attrs, "parents": tenant}
    if principal.type == "Principal":
        kind, sep, rest = principal.id.partition(":")
        if not sep or not rest or kind not in ("key", "jwt", "service"):
            return None
        return {"uid": uid("Principal", principal.id), "attrs": {"kind": kind}, "parents": tenant}
    raise InvalidInputError(f"a {principal.type} is not a principal; principals are Principal or Agent")


def _suspended(compiled: CompiledSet, request: DecisionRequest) -> str | None:
    if compiled.suspended_tenant is not None:
        return f"the tenant is suspended: {compiled.suspended_tenant}"
    agents = set(request.context.get("agents") or []) if request.action in ("plan.approve", "run.start") else set()
    if request.principal.type == "Agent":
        agents.add(request.principal.id)
    for agent in sorted(agents):
        if agent in compiled.suspended_agents:
            return f"the agent {agent} is suspended: {compiled.suspended_agents[agent]}"
    return None


def _cedar_request(tenant_id: UUID, request: DecisionRequest, action: str) -> dict[str, Any]:
    expected = RESOURCE_OF[action]
    if request.resource.type != expected:
        raise InvalidInputError(f"the resource of {action} is a {expected}, not a {request.resource.type}")
    unknown = set(request.context) - set(CONTEXT_DEFAULTS[action])
    if unknown:
        raise InvalidInputError(f"the context of {action} has no {', '.join(sorted(unknown))}")
    resource_id = str(tenant_id) if expected == "Tenant" else request.resource.id
    return {
        "principal": uid(request.principal.type, request.principal.id),
        "action": uid("Action", action),
        "resource": uid(expected, resource_id),
        "context": {**CONTEXT_DEFAULTS[action], **request.context},
    }


def _entities(tenant_id: UUID, request: DecisionRequest, principal: dict[str, Any]) -> list[dict[str, Any]]:
    kind = RESOURCE_OF[request.action]
    tenant = {"uid": uid("Tenant", str(tenant_id)), "attrs": {}, "parents": []}
    if kind == "Tenant":
        return [tenant, principal]
    unknown = set(request.resource_attributes) - set(RESOURCE_DEFAULTS[kind])
    if unknown:
        raise InvalidInputError(f"a {kind} has no attribute {', '.join(sorted(unknown))}")
    resource = {
        "uid": uid(kind, request.resource.id),
        "attrs": {**RESOURCE_DEFAULTS[kind], **request.resource_attributes},
        "parents": [uid("Tenant", str(tenant_id))],
    }
    return [tenant, principal, resource]


def judge(
    compiled: CompiledSet,
    tenant_id: UUID,
    request: DecisionRequest,
    principal: dict[str, Any] | None,
    actions: tuple[str, ...],
) -> Verdict:
    """Cedar's verdict on the request for each of `actions`, combined (a deny decides; else an approval)."""
    stopped = _suspended(compiled, request)
    if stopped is not None:
        return Verdict("deny", [], [stopped], suspended=True)
    if principal is None:
        return Verdict("deny", [], [f"unknown principal {request.principal.type}::{request.principal.id}"])
    requests = [_cedar_request(tenant_id, request, a) for a in actions]
    try:
        verdicts = engine.evaluate(compiled, requests, _entities(tenant_id, request, principal))
    except ValueError as exc:
        raise InvalidInputError(f"the request does not fit the policy schema: {exc}") from exc
    for wanted in ("deny", "approval_required"):
        found = [v for v in verdicts if v.outcome == wanted]
        if found:
            return found[0]
    return Verdict("allow", [s for v in verdicts for s in v.statements], [r for v in verdicts for r in v.reasons])


async def decide(
    uow: UnitOfWork,
    tenant_id: UUID,
    correlation_id: str,
    request: DecisionRequest,
    principal: dict[str, Any] | None,
    asked_by: str,
    actions: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Decide for the `principal` resolved from the request (`resolve`), open an approval if one is needed for a
    subject, and record it all (in the caller's unit of work)."""
    decision_id = uuid4()
    compiled = await compiled_set(uow.conn, tenant_id)
    found = judge(compiled, tenant_id, request, principal, actions or (request.action,))
    outcome, reasons, statements = found.outcome, list(found.reasons), list(found.statements)
    approval: dict[str, Any] | None = None
    by_approval = False
    if outcome == "approval_required" and request.subject is not None:
        approval = await _existing_approval(uow.conn, request)
        if approval is None:
            assert found.approval is not None
            approval = await _open_approval(
                uow, tenant_id, correlation_id, request, found.approval, asked_by, decision_id
            )
        elif approval["status"] == "approved":
            outcome, by_approval = "allow", True
            reasons = [f"approved by {', '.join(approval['decided_by'])}" + _comment(approval)]
        elif approval["status"] in ("rejected", "expired"):
            outcome, by_approval = "deny", True
            who = f" by {', '.join(approval['decided_by'])}" if approval["decided_by"] else ""
            reasons = [f"the approval was {approval['status']}{who}" + _comment(approval)]
    await uow.conn.execute(
        """INSERT INTO decisions (tenant_id, decision_id, action, principal_type, principal_id, resource_type,
                                  resource_id, context, subject_type, subject_id, outcome, policies, reasons,
                                  approval_id, revision, correlation_id)
           VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        decision_id,
        request.action,
        request.principal.type,
        request.principal.id,
        request.resource.type,
        request.resource.id,
        {"context": request.context, "resource_attributes": request.resource_attributes},
        request.subject.type if request.subject else None,
        request.subject.id if request.subject else None,
        outcome,
        [s.view() for s in statements],
        reasons,
        approval["approval_id"] if approval else None,
        compiled.revision,
        correlation_id,
    )
    answer = {
        "decision_id": decision_id,
        "outcome": outcome,
        "reasons": reasons,
        "policies": [s.view() for s in statements],
        "approval_id": approval["approval_id"] if approval else None,
        "deadline": approval["deadline"] if approval and outcome == "approval_required" else None,
        "revision": compiled.revision,
        "cacheable": outcome != "approval_required" and not by_approval,
        "reads_context": compiled.reads_context,
        "suspended": found.suspended,
    }
    await audit.append(
        uow.conn,
        tenant_id,
        "decision",
        asked_by,
        {
            "decision_id": str(decision_id),
            "action": request.action,
            "principal": f"{request.principal.type}::{request.principal.id}",
            "resource": f"{request.resource.type}::{request.resource.id}",
            "subject": f"{request.subject.type}:{request.subject.id}" if request.subject else None,
            "outcome": outcome,
            "reasons": reasons,
            "policies": [f"{s.name} v{s.version}#{s.index}" for s in statements],
            "approval_id": str(approval["approval_id"]) if approval else None,
            "revision": compiled.revision,
        },
    )
    return answer


def _comment(approval: dict[str, Any]) -> str:
    return f": {approval['comment']}" if approval.get("comment") else ""


async def _existing_approval(conn: Any, request: DecisionRequest) -> dict[str, Any] | None:
    assert request.subject is not None
    row = await conn.fetchrow(
        "SELECT approval_id, status, deadline, decided_by, comment FROM approvals "
        "WHERE subject_type = $1 AND subject_id = $2",
        request.subject.type,
        request.subject.id,
    )
    return dict(row) if row is not None else None


async def _open_approval(
    uow: UnitOfWork,
    tenant_id: UUID,
    correlation_id: str,
    request: DecisionRequest,
    statement: Statement,
    asked_by: str,
    decision_id: UUID,
) -> dict[str, Any]:
    """Open the approval the statement asks for (or find the one a concurrent decision opened)."""
    assert request.subject is not None
    levels = statement.approval_levels()
    first = levels[0]
    requested_by = request.on_behalf_of or (request.principal.id if request.principal.type == "Principal" else "")
    why = statement.annotations["approval"]
    what = request.what or f"{request.action} of {request.resource.type} {request.resource.id}"
    row = await uow.conn.fetchrow(
        """INSERT INTO approvals (tenant_id, approval_id, subject_type, subject_id, what, why, requested_by,
                                  decision_id, details, levels, deadline, correlation_id)
           VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10), $11)
           ON CONFLICT (tenant_id, subject_type, subject_id) DO NOTHING
           RETURNING approval_id, status, deadline, decided_by, comment""",
        uuid4(),
        request.subject.type,
        request.subject.id,
        what[:2000],
        why[:2000],
        requested_by,
        decision_id,
        {**request.details, "policy": statement.view()},
        [level.view() for level in levels],
        first.timeout_s,
        correlation_id,
    )
    if row is None:  # a concurrent decision opened it
        existing = await _existing_approval(uow.conn, request)
        assert existing is not None
        return existing
    approval = dict(row)
    await uow.emit(
        ApprovalRequested(
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            approval_id=approval["approval_id"],
            subject_type=request.subject.type,
            subject_id=request.subject.id,
            what=what[:2000],
            reason=why[:2000],
            deadline=approval["deadline"],
            required_approvals=first.quorum,
            approvers=list(first.approvers),
            level=0,
        )
    )
    await audit.append(
        uow.conn,
        tenant_id,
        "approval.requested",
        asked_by,
        {
            "approval_id": str(approval["approval_id"]),
            "subject": f"{request.subject.type}:{request.subject.id}",
            "what": what[:500],
            "why": why[:500],
            "levels": [level.view() for level in levels],
            "requested_by": requested_by,
        },
    )
    return approval
