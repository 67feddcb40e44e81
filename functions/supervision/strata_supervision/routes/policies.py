"""Policy resources of L08 supervision: the tenant's Cedar policies and their versions, validation, dry runs
against recorded decisions, and the schema policies are written against."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_supervision import dry_run, policies
from strata_supervision.schema import CEDAR_SCHEMA, PLATFORM_POLICIES

router = APIRouter(tags=["policies"])
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
Cedar = Annotated[
    str, Field(min_length=1, max_length=100_000, description="Cedar policy text (one or more statements)")
]


class Statement(BaseModel):
    effect: Literal["permit", "forbid"]
    annotations: dict[str, str]
    reads_context: list[str] | None


class Policy(BaseModel):
    policy_id: UUID
    name: str
    description: str
    cedar: str
    statements: list[Statement]
    statement_count: int
    enabled: bool
    version: int
    changed_by: str
    created_at: datetime
    updated_at: datetime


class PolicyVersion(BaseModel):
    policy_id: UUID
    version: int
    change: Literal["created", "updated", "rolled_back", "deleted"]
    name: str
    description: str
    cedar: str
    statement_count: int
    enabled: bool
    changed_by: str
    created_at: datetime


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    description: str = Field(default="", max_length=2000)
    cedar: Cedar
    enabled: bool = True


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    cedar: Cedar | None = None
    enabled: bool | None = None


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="The version whose content becomes the policy's next version")


class Validate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cedar: Cedar


class Validation(BaseModel):
    valid: bool
    errors: list[str]
    statements: list[Statement]


class CandidateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy_id: UUID | None = Field(default=None, description="The policy changed; omitted: a new policy")
    cedar: Cedar | None = Field(default=None, description="Its new text")
    delete: bool = Field(default=False, description="The policy removed instead")


class DryRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: list[CandidateChange] = Field(min_length=1, max_length=50)
    limit: int = Field(default=200, ge=1, le=2000, description="How many of the newest recorded decisions to replay")
    action: Literal["plan.approve", "run.start", "tool.invoke", "model.call"] | None = None


class ReplayedDecision(BaseModel):
    decision_id: UUID
    action: str
    principal: str
    resource: str
    recorded: str
    now: str
    reasons: list[str]
    created_at: datetime


class DryRunResult(BaseModel):
    replayed: int
    changed: int
    skipped: int = Field(description="Recorded decisions that cannot be replayed (their principal is gone)")
    by_outcome: dict[str, int] = Field(description="Transitions such as allow->deny, with their counts")
    differences: list[ReplayedDecision]


class PolicySchema(BaseModel):
    cedar_schema: str
    platform_policies: str
    annotations: dict[str, str]


@router.get("/v1/policies", response_model=Page[Policy], summary="List the tenant's policies, newest first.")
async def list_policies(
    principal: Annotated[Principal, Depends(require_scope("policies:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """List the tenant's policies, newest first."""
    items, next_cursor = await policies.list_page(principal.tenant_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/policies", response_model=Policy, status_code=201, summary="Create a policy (checked first).")
async def create_policy(
    body: PolicyCreate, principal: Annotated[Principal, Depends(require_scope("policies:write"))], response: Response
) -> dict[str, Any]:
    """Create a policy. Its text must parse, be static (no templates) and fit the schema, with well-formed
    annotations; otherwise 422 lists every problem."""
    policy = await policies.create(
        principal.tenant_id, principal.principal_id, body.name, body.description, body.cedar, body.enabled
    )
    response.headers["Location"] = f"/v1/policies/{policy['policy_id']}"
    set_etag(response, policy["version"])
    return policy


@router.get("/v1/policies/schema", response_model=PolicySchema, summary="What policies are written against.")
async def policy_schema(principal: Annotated[Principal, Depends(require_scope("policies:read"))]) -> dict[str, Any]:
    """The Cedar schema (entities, actions and their contexts), the platform's own policies every tenant's set
    starts with, and the annotations Strata reads."""
    return {
        "cedar_schema": CEDAR_SCHEMA,
        "platform_policies": PLATFORM_POLICIES,
        "annotations": {
            "reason": "the explanation a decision gives when the statement decides it",
            "approval": "on a permit: a human must approve first; the value is why",
            "approvers": "who may approve: principal ids, comma separated, or * (anyone holding approvals:decide)",
            "quorum": "how many approvers must approve (default 1)",
            "timeout": "each level's deadline: 90s, 15m, 1h, 2d (default 1h)",
            "escalate": "the levels asked next, in order, when a level's deadline passes (; between levels)",
            "id": "a name for the statement in decisions",
        },
    }


@router.post("/v1/policies/validate", response_model=Validation, summary="Check a policy text without storing it.")
async def validate_policy(
    body: Validate, principal: Annotated[Principal, Depends(require_scope("policies:read"))]
) -> dict[str, Any]:
    """Check a policy text without storing it: every problem found, or its statements."""
    return policies.validate(body.cedar)


@router.post("/v1/policies/dry-run", response_model=DryRunResult, summary="Replay recorded decisions under changes.")
async def dry_run_policies(
    body: DryRun, principal: Annotated[Principal, Depends(require_scope("policies:read"))]
) -> dict[str, Any]:
    """Replay the newest recorded decisions under the policy set as it would be with `changes` (nothing is
    stored): how many would now be decided differently, and which."""
    changes = [c.model_dump() for c in body.changes]
    return await dry_run.replay(principal.tenant_id, changes, body.limit, body.action)


@router.get("/v1/policies/{policy_id}", response_model=Policy, summary="Read a policy.")
async def get_policy(
    policy_id: UUID, principal: Annotated[Principal, Depends(require_scope("policies:read"))], response: Response
) -> dict[str, Any]:
    """Read a policy."""
    policy = await policies.get(principal.tenant_id, policy_id)
    set_etag(response, policy["version"])
    return policy


@router.patch("/v1/policies/{policy_id}", response_model=Policy, summary="Change a policy (a new version).")
async def update_policy(
    policy_id: UUID,
    body: PolicyUpdate,
    principal: Annotated[Principal, Depends(require_scope("policies:write"))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Change a policy's text, name, description or whether it is enabled: a new version (If-Match honoured)."""
    changes = body.model_dump(exclude_none=True)
    policy = await policies.update(
        principal.tenant_id, principal.principal_id, policy_id, expected_version(request), changes
    )
    set_etag(response, policy["version"])
    return policy


@router.delete("/v1/policies/{policy_id}", status_code=204, summary="Delete a policy (its versions stay).")
async def delete_policy(
    policy_id: UUID, principal: Annotated[Principal, Depends(require_scope("policies:write"))], request: Request
) -> Response:
    """Delete a policy: it leaves the policy set; its versions stay, and a rollback brings it back."""
    await policies.delete(principal.tenant_id, principal.principal_id, policy_id, expected_version(request))
    return Response(status_code=204)


@router.get(
    "/v1/policies/{policy_id}/versions",
    response_model=Page[PolicyVersion],
    summary="A policy's versions, newest first.",
)
async def policy_versions(
    policy_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("policies:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """A policy's versions, newest first (deleted policies too)."""
    items, next_cursor = await policies.versions(principal.tenant_id, policy_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/policies/{policy_id}/rollback", response_model=Policy, summary="Roll a policy back to a version.")
async def rollback_policy(
    policy_id: UUID,
    body: Rollback,
    principal: Annotated[Principal, Depends(require_scope("policies:write"))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Make an earlier version's content the policy's next version (a deleted policy comes back; If-Match
    honoured)."""
    policy = await policies.rollback(
        principal.tenant_id, principal.principal_id, policy_id, body.version, expected_version(request)
    )
    set_etag(response, policy["version"])
    return policy
