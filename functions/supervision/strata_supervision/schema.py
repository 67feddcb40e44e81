"""What Strata's Cedar policies are written against: the entities (tenant, principal, agent, tool, model), the
actions (`plan.approve`, `run.start`, `tool.invoke`, `model.call`) with their contexts, and the platform's own
policies, which every tenant's set starts with.

Policies may carry annotations Strata reads:
- `@reason("…")`: the explanation a decision gives when the statement decides it (a deny's reason);
- `@approval("why")` on a `permit`: what it permits needs a human's approval first, asked with that reason;
- `@approvers("key:…,jwt:…")` who may approve (default `*`: anyone holding `approvals:decide`), `@quorum("2")`
  how many of them must (default 1), `@timeout("1h")` the deadline of each level (default 1h), and
  `@escalate("key:a,key:b;key:c")` the levels asked next, in order, when a level's deadline passes (`;` between
  levels); after the last level the request is rejected as expired;
- `@id("…")`: a name for the statement in decisions."""

from __future__ import annotations

from functools import cache
from typing import Any

import cedarpy

NAMESPACE = "Strata"
ACTIONS = ("plan.approve", "run.start", "tool.invoke", "model.call")
PRINCIPAL_TYPES = ("Principal", "Agent")

CEDAR_SCHEMA = """namespace Strata {
  entity Tenant;
  entity Principal in [Tenant] = { kind: String };
  entity Agent in [Tenant] = { name: String, status: String, version: Long, capabilities: Set<String> };
  entity Tool in [Tenant] = { source: String, side_effects: Bool, requires_approval: Bool };
  entity Model in [Tenant] = { provider: String };

  type PlanContext = {
    goal: String,
    strategy: String,
    task_count: Long,
    tools: Set<String>,
    agents: Set<String>,
    require_approval: Bool,
    budget_micro_usd: Long
  };
  action "plan.approve" appliesTo { principal: [Principal], resource: [Tenant], context: PlanContext };
  action "run.start" appliesTo { principal: [Principal], resource: [Tenant], context: PlanContext };
  action "tool.invoke" appliesTo {
    principal: [Principal, Agent], resource: [Tool],
    context: { run_id: String, task_id: String, arguments: String }
  };
  action "model.call" appliesTo {
    principal: [Principal, Agent], resource: [Model],
    context: { run_id: String, task_id: String, purpose: String }
  };
}
"""

PLATFORM_POLICIES = """@id("platform.default")
@reason("allowed unless a policy forbids it")
permit (principal, action, resource);

@id("platform.goal-approval")
@approval("the goal asks for a human's approval before its plan runs")
permit (principal, action == Strata::Action::"plan.approve", resource)
when { context.require_approval };

@id("platform.tool-approval")
@approval("the tenant's settings require a human's approval for each call of this tool")
permit (principal, action == Strata::Action::"tool.invoke", resource)
when { resource.requires_approval };
"""


@cache
def cedar_schema() -> Any:
    """The parsed schema (a cedarpy handle, parsed once per environment)."""
    return cedarpy.Schema.from_str(CEDAR_SCHEMA)


def uid(kind: str, entity_id: str) -> dict[str, str]:
    return {"type": f"{NAMESPACE}::{kind}", "id": entity_id}
