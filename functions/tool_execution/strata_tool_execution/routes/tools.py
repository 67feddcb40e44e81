"""The tool registry as each tenant has it, the tenant's settings of a tool, and calls through the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.decisions import EntityRef
from strata.errors import ForbiddenError
from strata.etags import expected_version, set_etag
from strata.events.common import TaskKey
from strata.pagination import Page, PageRequest, decode_values, encode_values, page_request
from strata.web import require_scope
from strata_tool_execution import ledger, registry

router = APIRouter(tags=["tools"])
ToolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class Limits(BaseModel):
    timeout_s: float
    max_output_bytes: int


class Tool(BaseModel):
    name: str
    version: int
    description: str
    source: Literal["builtin", "mcp"]
    server: str | None = Field(description="For an MCP tool: the name of its server")
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    side_effects: bool = Field(description="Reaches outside the platform")
    enabled: bool
    requires_approval: bool
    limits: Limits = Field(description="The tenant's limits (at most max_limits)")
    max_limits: Limits
    config: dict[str, Any]
    config_schema: dict[str, Any]
    settings_version: int = Field(description="The ETag of the tenant's settings (0: never changed)")


class LimitsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout_s: float | None = Field(default=None, gt=0)
    max_output_bytes: int | None = Field(default=None, gt=0)


class SettingsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    requires_approval: bool | None = None
    limits: LimitsChange | None = None
    config: dict[str, Any] | None = None


class Invocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: UUID
    task_id: TaskKey
    step: int = Field(ge=0, le=1_000_000)
    call_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    input: dict[str, Any]
    agent_id: UUID | None = Field(
        default=None, description="The agent making the call (the platform's layers only): the policies' principal"
    )
    on_behalf_of: str | None = Field(
        default=None,
        max_length=200,
        description="The principal the work is for (the platform's layers only); a call needing approval cannot be "
        "approved by them",
    )


class ToolCall(BaseModel):
    run_id: UUID
    task_id: str
    step: int
    call_id: str
    tool_name: str
    tool_version: int
    input: dict[str, Any]
    status: Literal["running", "succeeded", "failed"]
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None = Field(
        description="The tool's own running time (the ledger's work not in it); for an interrupted call, the time its "
        "record was open"
    )
    replayed: bool = Field(description="True when the ledger answered with the call already recorded")
    decision_id: UUID | None = Field(description="Supervision's decision that let the call through (or refused it)")


class AwaitingApproval(BaseModel):
    status: Literal["awaiting_approval"]
    approval_id: UUID
    deadline: datetime | None
    reasons: list[str]
    decision_id: UUID


@router.get("/v1/tools", response_model=Page[Tool], summary="The tools this tenant can call, with its settings.")
async def list_tools(
    principal: Annotated[Principal, Depends(require_scope("tools:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """The tools this tenant can call, with its settings, by name."""
    after = decode_values(page.cursor, 1)[0] if page.cursor else ""
    found = [t.view() for t in await registry.tools(principal.tenant_id) if t.definition.name > after]
    items = found[: page.limit]
    more = len(found) > page.limit
    return {"items": items, "next_cursor": encode_values([items[-1]["name"]]) if more else None}


@router.get("/v1/tools/{name}", response_model=Tool, summary="One tool, with this tenant's settings (ETag).")
async def get_tool(
    name: ToolName, response: Response, principal: Annotated[Principal, Depends(require_scope("tools:read"))]
) -> dict[str, Any]:
    """One tool, with this tenant's settings (ETag)."""
    tool = await registry.tool(principal.tenant_id, name)
    set_etag(response, tool.settings_version)
    return tool.view()


@router.patch(
    "/v1/tools/{name}", response_model=Tool, summary="Change this tenant's settings of a tool (If-Match honoured)."
)
async def change_tool(
    name: ToolName,
    body: SettingsChange,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("tools:write"))],
) -> dict[str, Any]:
    """Change this tenant's settings of a tool (If-Match honoured)."""
    changes = body.model_dump(exclude_unset=True)
    if "limits" in changes:
        changes["limits"] = {k: v for k, v in (changes["limits"] or {}).items() if v is not None}
    tool = await registry.change_settings(principal.tenant_id, name, changes, expected_version(request))
    set_etag(response, tool.settings_version)
    return tool.view()


@router.post(
    "/v1/tools/{name}/invoke",
    response_model=ToolCall,
    summary="Call a tool once per (run, task, step, call id); a repeated call returns the recorded result.",
    responses={202: {"model": AwaitingApproval, "description": "The call needs a human's approval first"}},
)
async def invoke(
    name: ToolName,
    body: Invocation,
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("tools:invoke"))],
) -> Any:
    """Call a tool once per (run, task, step, call id); a repeated call returns the recorded result. Supervision
    (L08) decides every new call first: a denied call is recorded as failed with kind `denied` and the reasons; a
    call needing a human's approval is not made (202 with the approval; ask again after its outcome); without an
    answer from supervision the call is refused (503)."""
    key = ledger.CallKey(body.run_id, body.task_id, body.step, body.call_id)
    answer = await ledger.invoke(
        principal.tenant_id, request.state.correlation_id, name, body.input, key, _actor(principal, body)
    )
    if answer.get("status") == "awaiting_approval":
        return JSONResponse(AwaitingApproval.model_validate(answer).model_dump(mode="json"), status_code=202)
    return answer


def _actor(principal: Principal, body: Invocation) -> ledger.Actor:
    """The call's principal for the policies: the caller, or for the platform's own layers the agent or principal
    they say the call is made for."""
    if principal.kind != "service":
        if body.agent_id is not None or body.on_behalf_of is not None:
            raise ForbiddenError("agent_id and on_behalf_of are for the platform's own layers")
        return ledger.Actor(EntityRef(type="Principal", id=principal.principal_id), principal.principal_id)
    on_behalf_of = body.on_behalf_of or ""
    if body.agent_id is not None:
        return ledger.Actor(EntityRef(type="Agent", id=str(body.agent_id)), on_behalf_of)
    return ledger.Actor(EntityRef(type="Principal", id=on_behalf_of or principal.principal_id), on_behalf_of)


@router.get(
    "/v1/tool-calls",
    response_model=Page[ToolCall],
    summary="Tool calls from the ledger: a run's in order, or the tenant's newest first.",
)
async def list_calls(
    principal: Annotated[Principal, Depends(require_scope("tools:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    run_id: UUID | None = None,
    task_id: Annotated[str | None, Query(max_length=100)] = None,
    outcome: Annotated[
        Literal["running", "succeeded", "failed", "denied"] | None,
        Query(description="Only calls that ended so (denied: refused by supervision)"),
    ] = None,
) -> dict[str, Any]:
    """Tool calls from the ledger: a run's in order, or the tenant's newest first."""
    items, next_cursor = await ledger.calls(principal.tenant_id, run_id, task_id, page.limit, page.cursor, outcome)
    return {"items": items, "next_cursor": next_cursor}
