"""Plan templates through the API: create, read, list, change (If-Match), delete, and match a goal's text (what a
goal would be planned with, without submitting it). Learned templates come from the platform's own layers (L07),
usually proposed: a person makes one active, and only active templates are matched."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.errors import ForbiddenError, InvalidInputError
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.plans import PlanBody
from strata.web import require_scope
from strata_planning import template_store, templates

router = APIRouter(tags=["plan templates"])
Pattern = Annotated[str, Field(min_length=1, max_length=500)]
Origin = Literal["authored", "learned"]
Status = Literal["active", "proposed"]


class Lineage(BaseModel):
    """Where a learned template came from: the run (of a goal's plan) it was learned from, and that run's score."""

    model_config = ConfigDict(extra="forbid")
    run_id: UUID | None = None
    goal_id: UUID | None = None
    plan_id: UUID | None = None
    score: float | None = Field(default=None, ge=0, le=1, description="The run's quality score (L06), in [0, 1]")


class PlanTemplate(BaseModel):
    template_id: UUID
    name: str
    description: str
    patterns: list[str]
    parameters: dict[str, Any]
    body: dict[str, Any]
    origin: Origin = Field(description="authored by a person, or learned from a run (L07)")
    lineage: Lineage = Field(description="For a learned template: the run, goal, plan and score it came from")
    status: Status = Field(description="Only active templates are matched; a proposed one waits for a person")
    used_count: int = Field(description="How many goals were planned from it")
    last_used_at: datetime | None = Field(description="When a goal was last planned from it")
    version: int
    created_at: datetime
    updated_at: datetime


class PlanTemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    description: str = Field(default="", max_length=2000)
    patterns: list[Pattern] = Field(min_length=1, max_length=20, description='Phrases like "summarise {url}"')
    parameters: dict[str, Any] = Field(description="A JSON Schema (type object) for the placeholders")
    body: dict[str, Any] = Field(description="A plan whose strings may hold {{placeholder}} slots")
    status: Status = Field(default="active", description="proposed: not matched until someone makes it active")
    origin: Origin | None = Field(
        default=None, description="authored (the default) or learned (the platform's own layers only)"
    )
    lineage: Lineage | None = Field(
        default=None, description="Where a learned template came from (the platform's own layers only)"
    )


class PlanTemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, max_length=2000)
    patterns: list[Pattern] | None = Field(default=None, min_length=1, max_length=20)
    parameters: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    status: Status | None = Field(default=None, description="active: matched to goals (a proposed one is promoted)")


class MatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=20_000, description="A goal's text")


class MatchAnswer(BaseModel):
    matched: bool
    template_id: UUID | None = None
    template_name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    plan: PlanBody | None = None


@router.get("/v1/plan-templates", response_model=Page[PlanTemplate], summary="List the tenant's plan templates.")
async def list_templates(
    principal: Annotated[Principal, Depends(require_scope("goals:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: Status | None = None,
    origin: Origin | None = None,
) -> dict[str, Any]:
    """List the tenant's plan templates."""
    items, next_cursor = await template_store.list_page(principal.tenant_id, page, status, origin)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/plan-templates", status_code=201, response_model=PlanTemplate, summary="Create a plan template.")
async def create_template(
    body: PlanTemplateCreate,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("goals:write"))],
) -> dict[str, Any]:
    """Create a plan template (refused with reasons when its plan could never run)."""
    authorship(principal, body)
    fields = body.model_dump(exclude={"lineage"})
    fields["lineage"] = body.lineage.model_dump(mode="json", exclude_none=True) if body.lineage else {}
    created = await template_store.create(principal.tenant_id, fields)
    set_etag(response, created["version"])
    response.headers["Location"] = f"/v1/plan-templates/{created['template_id']}"
    return created


def authorship(principal: Principal, body: PlanTemplateCreate) -> None:
    """Only the platform's own layers say a template was learned, and where from; lineage belongs to learned
    templates."""
    if principal.kind != "service" and (body.origin is not None or body.lineage is not None):
        raise ForbiddenError("origin and lineage are for the platform's own layers")
    if body.lineage is not None and body.origin != "learned":
        raise InvalidInputError("lineage is for learned templates (origin learned)")


@router.post("/v1/plan-templates/match", response_model=MatchAnswer, summary="Which template a goal's text matches.")
async def match_template(
    body: MatchRequest, principal: Annotated[Principal, Depends(require_scope("goals:read"))]
) -> dict[str, Any]:
    """Which template a goal's text matches, with its parameters and the plan it would make (nothing is submitted)."""
    found = templates.best_match(body.text, await template_store.live(principal.tenant_id))
    if found is None:
        return {"matched": False}
    return {
        "matched": True,
        "template_id": found.template["template_id"],
        "template_name": found.template["name"],
        "parameters": found.parameters,
        "plan": templates.fill(found.template["body"], found.parameters),
    }


@router.get("/v1/plan-templates/{template_id}", response_model=PlanTemplate, summary="Read a plan template.")
async def get_template(
    template_id: UUID, response: Response, principal: Annotated[Principal, Depends(require_scope("goals:read"))]
) -> dict[str, Any]:
    """Read a plan template."""
    found = await template_store.get(principal.tenant_id, template_id)
    set_etag(response, found["version"])
    return found


@router.patch(
    "/v1/plan-templates/{template_id}", response_model=PlanTemplate, summary="Change a plan template (If-Match)."
)
async def change_template(
    template_id: UUID,
    body: PlanTemplateUpdate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("goals:write"))],
) -> dict[str, Any]:
    """Change a plan template (If-Match honoured; refused with reasons when its plan could never run)."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    changed = await template_store.change(principal.tenant_id, template_id, changes, expected_version(request))
    set_etag(response, changed["version"])
    return changed


@router.delete("/v1/plan-templates/{template_id}", status_code=204, summary="Delete a plan template (If-Match).")
async def delete_template(
    template_id: UUID, request: Request, principal: Annotated[Principal, Depends(require_scope("goals:write"))]
) -> Response:
    """Delete a plan template (If-Match honoured)."""
    await template_store.delete(principal.tenant_id, template_id, expected_version(request))
    return Response(status_code=204)
