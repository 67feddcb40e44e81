"""Planning a submitted goal: by template (the most specific active template the goal's text matches), by the LLM
(through L04, the answer constrained by the plan's JSON Schema), hybrid (template first, else the LLM), or given
(the submitter's own plan, sent with the goal). Every plan is checked before it is kept: the plan contract's
structural rules, every tool exists for the tenant, is enabled and is allowed by the goal's constraints, and the
estimated cost fits the goal's budget. The LLM's plan gets one repair (re-asked with the problems); a plan that
still fails rejects the goal with the reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import Field, ValidationError

from strata import jsonschemas, peers
from strata.config import Settings
from strata.events.planning import GoalConstraints, GoalSubmitted
from strata.plans import REFERENCE, PlanBody, problems
from strata_planning import goals, template_store, templates

logger = Logger(child=True)


class PlanningSettings(Settings):
    planning_model: str = Field(default="", description="A catalogue model name for LLM planning; empty: routed")
    planning_max_tokens: int = Field(default=4096, ge=256, le=65_536)


@dataclass(frozen=True)
class Planned:
    body: PlanBody
    strategy: str
    template_id: UUID | None = None


@dataclass(frozen=True)
class Refused:
    reasons: list[str]


async def on_goal_submitted(event: GoalSubmitted) -> None:
    """The GoalSubmitted consumer: plan the goal once (a redelivered event finds it settled and does nothing)."""
    goal = await goals.pending(event.tenant_id, event.goal_id)
    if goal is None:
        return
    given = PlanBody.model_validate(goal["given_plan"]) if goal["given_plan"] is not None else None
    outcome = await make_plan(
        event.tenant_id, event.correlation_id, goal["text"], event.constraints, goal["strategy"], given=given
    )
    if isinstance(outcome, Planned):
        await goals.record_plan(event, outcome.body, outcome.strategy, outcome.template_id)
    else:
        await goals.reject(event, outcome.reasons)


async def make_plan(
    tenant_id: UUID,
    correlation_id: str,
    text: str,
    constraints: GoalConstraints,
    strategy: str,
    failure: str | None = None,
    given: PlanBody | None = None,
) -> Planned | Refused:
    """A checked plan for the goal, or why there is none. `failure`: what became of the previous plan's run (a
    replan), which the model is told, and which rules out the template that made the failed plan. `given`: the
    submitter's own plan (strategy given), kept if it passes the same checks as any plan."""
    if strategy == "given":
        if failure is not None:
            return Refused(["a given plan failed; there is nothing to replan"])
        if given is None:
            return Refused(["the goal's strategy is given but it came with no plan"])
        found = check(given, await _tools(tenant_id, correlation_id), constraints)
        return Refused([f"the given plan: {p}" for p in found]) if found else Planned(given, "given")
    tools = await _tools(tenant_id, correlation_id)
    reasons: list[str] = []
    if strategy in ("template", "hybrid") and failure is None:
        match = templates.best_match(text, await template_store.live(tenant_id))
        if match is None:
            reasons.append("no plan template matches the goal")
        else:
            body = PlanBody.model_validate(templates.fill(match.template["body"], match.parameters))
            found = check(body, tools, constraints)
            if not found:
                return Planned(body, "template", match.template["template_id"])
            reasons += [f"template {match.template['name']}: {p}" for p in found]
        if strategy == "template":
            return Refused(reasons)
    if failure is not None and strategy == "template":
        return Refused(["a template plan failed and the goal allows templates only, so there is nothing to replan"])
    return await _llm_plan(tenant_id, correlation_id, text, constraints, tools, strategy, reasons, failure)


def check(body: PlanBody, tools: dict[str, dict[str, Any]], constraints: GoalConstraints) -> list[str]:
    """Why this plan cannot be kept for this tenant and goal (empty: it can)."""
    found = problems(body)
    allowed = set(constraints.allowed_tools) if constraints.allowed_tools is not None else None
    for task in body.tasks:
        if task.kind != "tool" or task.tool is None:
            continue
        tool = tools.get(task.tool)
        if tool is None:
            found.append(f"task {task.task_id} uses the tool {task.tool!r}, which does not exist")
        elif not tool["enabled"]:
            found.append(f"task {task.task_id} uses the tool {task.tool!r}, which is disabled for this tenant")
        elif allowed is not None and task.tool not in allowed:
            found.append(f"task {task.task_id} uses the tool {task.tool!r}, which the goal's constraints do not allow")
        else:  # what is known of the input now must fit the tool (references are filled in when the task runs)
            wrong = jsonschemas.first_error(tool["input_schema"], task.input, unknown=is_reference)
            if wrong is not None:
                found.append(f"task {task.task_id}: the input does not fit the {task.tool} tool {wrong}")
    cost = sum(t.estimated_cost_micro_usd for t in body.tasks)
    if constraints.budget_micro_usd is not None and cost > constraints.budget_micro_usd:
        found.append(
            f"the plan is estimated at {cost} micro-USD, over the goal's budget of {constraints.budget_micro_usd}"
        )
    return found


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and REFERENCE in value


async def _tools(tenant_id: UUID, correlation_id: str) -> dict[str, dict[str, Any]]:
    """The tenant's tools (L03), by name."""
    response = await peers.call(
        "GET", "/v1/tools", tenant_id=tenant_id, correlation_id=correlation_id, params={"limit": 200}
    )
    if response.status_code != 200:
        raise RuntimeError(f"the tool registry answered {response.status_code}")  # retried, then dead-lettered
    return {t["name"]: t for t in response.json()["items"]}


def _prompt(
    text: str, constraints: GoalConstraints, tools: dict[str, dict[str, Any]], failure: str | None = None
) -> list[dict[str, str]]:
    usable = [
        {"name": t["name"], "description": t["description"], "input_schema": t["input_schema"]}
        for t in tools.values()
        if t["enabled"] and (constraints.allowed_tools is None or t["name"] in constraints.allowed_tools)
    ]
    system = (
        "You plan work for an agent platform. Answer with a JSON plan: a list of tasks forming a directed acyclic "
        "graph. Each task has a short task_id (letters, digits, _ . -), a title, and kind 'tool' (with `tool` naming "
        "one of the tools below and `input` matching its input schema) or 'agent' (with `instructions` for a "
        "language-model agent). A task that needs an earlier task's output lists it in depends_on and puts "
        '{"$from": "<task_id>", "path": "<dot.path.into.its.output>"} where the value goes in its input. '
        "Use as few tasks as the goal needs.\n\nTools:\n" + json.dumps(usable, separators=(",", ":"))
    )
    goal = f"Goal: {text}"
    if constraints.budget_micro_usd is not None:
        goal += f"\nBudget: {constraints.budget_micro_usd} micro-USD in total."
    if failure is not None:
        goal += (
            "\n\nA previous plan for this goal failed. Plan again around the failure; tasks that completed need not"
            " run again (put their outputs into the new tasks' inputs as literal values).\n" + failure
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": goal}]


async def _llm_plan(
    tenant_id: UUID,
    correlation_id: str,
    text: str,
    constraints: GoalConstraints,
    tools: dict[str, dict[str, Any]],
    strategy: str,
    earlier: list[str],
    failure: str | None = None,
) -> Planned | Refused:
    settings = PlanningSettings()
    messages = _prompt(text, constraints, tools, failure)
    reasons = list(earlier)
    for attempt in range(2):  # the model's plan, then one repair
        request: dict[str, Any] = {
            "messages": messages,
            "response_schema": PlanBody.model_json_schema(),
            "purpose": "planning",
            "max_tokens": settings.planning_max_tokens,
            "cache": False,
        }
        if settings.planning_model:
            request["model"] = settings.planning_model
        else:
            request |= {"requirements": {"capabilities": ["json"]}, "strategy": "quality"}
        response = await peers.call(
            "POST", "/v1/models/chat", tenant_id=tenant_id, correlation_id=correlation_id, json=request
        )
        if response.status_code != 200:
            detail = response.json().get("detail", response.text[:300]) if response.content else ""
            return Refused([*reasons, f"the model gateway answered {response.status_code}: {detail}"])
        content = response.json()["content"]
        try:
            body = PlanBody.model_validate_json(content)
        except ValidationError as exc:
            found = [
                f"the model's plan is not a valid plan: {e['msg']} at {'/'.join(map(str, e['loc']))}"
                for e in exc.errors()[:10]
            ]
        else:
            found = check(body, tools, constraints)
            if not found:
                return Planned(body, "llm" if strategy == "llm" else "hybrid")
        logger.info("the model's plan was refused", extra={"attempt": attempt + 1, "problems": found[:10]})
        reasons = [*earlier, *(f"the model's plan: {p}" for p in found)]
        messages = [
            *messages,
            {"role": "assistant", "content": content},
            {
                "role": "user",
                "content": "That plan cannot run: " + "; ".join(found[:20]) + ". Answer with a corrected plan.",
            },
        ]
    return Refused(reasons)
