"""Goals: submit one (planned asynchronously: template, LLM, hybrid, or the submitter's own plan), read it with its
outcome, list them; and the plans made for a goal, each version signed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from strata.auth import Principal
from strata.errors import ForbiddenError, InvalidInputError
from strata.events.planning import GoalConstraints
from strata.pagination import Page, PageRequest, page_request
from strata.plans import PlanBody, problems
from strata.web import require_scope
from strata_planning import goals

router = APIRouter(tags=["goals"])
Strategy = Literal["template", "llm", "hybrid", "given"]
GoalStatus = Literal["submitted", "planned", "rejected", "running", "completed", "failed", "cancelled"]


class Goal(BaseModel):
    goal_id: UUID
    text: str
    status: GoalStatus
    constraints: GoalConstraints
    strategy: Strategy
    submitted_by: str
    reasons: list[str] = Field(description="Why planning refused the goal (status rejected)")
    plan_id: UUID | None = Field(description="The goal's current plan (status planned)")
    run_id: UUID | None = Field(description="The run of its plan, once started")
    created_at: datetime
    updated_at: datetime


class GoalSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=20_000)
    constraints: GoalConstraints = GoalConstraints()
    strategy: Strategy = Field(
        default="hybrid",
        description="hybrid: a matching template, else the LLM; given: the plan sent with the goal (the default when "
        "one is)",
    )
    plan: PlanBody | None = Field(
        default=None, description="The submitter's own plan, checked like any plan and run as it is (strategy given)"
    )
    on_behalf_of: str | None = Field(
        default=None,
        max_length=200,
        description="Whom the goal is for (the platform's own layers only): its submitter, whom policies judge",
    )

    @model_validator(mode="after")
    def _strategy_fits_the_plan(self) -> GoalSubmit:
        if self.plan is not None:
            if "strategy" in self.model_fields_set and self.strategy != "given":
                raise ValueError(f"a goal with its own plan has strategy given, not {self.strategy}")
            self.strategy = "given"
        elif self.strategy == "given":
            raise ValueError("strategy given needs the plan")
        return self


class Plan(BaseModel):
    plan_id: UUID
    goal_id: UUID
    version: int
    strategy: Strategy
    template_id: UUID | None
    body: PlanBody
    signature: str = Field(description="hmac-sha256 over the body's canonical JSON")
    estimated_cost_micro_usd: int
    supersedes_version: int | None
    created_at: datetime


@router.post("/v1/goals", status_code=202, response_model=Goal, summary="Submit a goal; it is planned asynchronously.")
async def submit_goal(
    body: GoalSubmit,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("goals:write"))],
) -> dict[str, Any]:
    """Submit a goal; it is planned asynchronously (poll the goal, or follow GoalSubmitted → PlanCreated)."""
    submitted_by = _submitter(principal, body)
    if body.plan is not None:
        found = problems(body.plan)
        if found:
            raise InvalidInputError(f"the plan cannot run: {'; '.join(found)}", problems=found)
    goal = await goals.submit(
        principal.tenant_id,
        submitted_by,
        request.state.correlation_id,
        body.text,
        body.constraints,
        body.strategy,
        body.plan,
    )
    response.headers["Location"] = f"/v1/goals/{goal['goal_id']}"
    return goal


def _submitter(principal: Principal, body: GoalSubmit) -> str:
    """Who submits the goal (policies judge its plan as theirs): the caller, or for the platform's own layers the
    principal they say it is for."""
    if principal.kind != "service":
        if body.on_behalf_of is not None:
            raise ForbiddenError("on_behalf_of is for the platform's own layers")
        return principal.principal_id
    return body.on_behalf_of or principal.principal_id


@router.get("/v1/goals", response_model=Page[Goal], summary="List the tenant's goals, newest first.")
async def list_goals(
    principal: Annotated[Principal, Depends(require_scope("goals:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: GoalStatus | None = None,
) -> dict[str, Any]:
    """List the tenant's goals, newest first."""
    items, next_cursor = await goals.list_page(principal.tenant_id, page, status)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/goals/{goal_id}", response_model=Goal, summary="Read a goal and its planning outcome.")
async def get_goal(
    goal_id: UUID, principal: Annotated[Principal, Depends(require_scope("goals:read"))]
) -> dict[str, Any]:
    """Read a goal and its planning outcome."""
    return await goals.get(principal.tenant_id, goal_id)


@router.get("/v1/goals/{goal_id}/plans", response_model=Page[Plan], summary="A goal's plans, newest version first.")
async def goal_plans(
    goal_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("goals:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """A goal's plans, newest version first."""
    items, next_cursor = await goals.plans_of(principal.tenant_id, goal_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/plans/{plan_id}", response_model=Plan, summary="Read a plan (its tasks and signature).")
async def get_plan(
    plan_id: UUID, principal: Annotated[Principal, Depends(require_scope("goals:read"))]
) -> dict[str, Any]:
    """Read a plan (its tasks and signature)."""
    return await goals.plan(principal.tenant_id, plan_id)
