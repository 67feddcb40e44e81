"""Agents: register (each gets a DID), read, list with filters, update with If-Match, soft delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_data import service, store

router = APIRouter(tags=["agents"])
Status = Literal["active", "paused", "retired"]
Capability = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.:-]*$")]
Metadata = Annotated[dict[str, Any], Field(max_length=50)]
ToolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
NULLABLE = {"tools"}  # null is a value here: every tool of the tenant


class AgentModel(BaseModel):
    """Which model the agent's turns use: a catalogue name, else requirements the model gateway routes by."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200, description="A catalogue model name")
    capabilities: list[Capability] = Field(default_factory=list, max_length=6, description="e.g. tools, json")
    min_context: int = Field(default=0, ge=0, le=10_000_000)
    strategy: Literal["cheapest", "fastest", "quality"] = "quality"
    temperature: float | None = Field(default=None, ge=0, le=2)


class Agent(BaseModel):
    agent_id: UUID
    name: str
    did: str
    description: str
    capabilities: list[str]
    metadata: dict[str, Any]
    system_prompt: str
    model: AgentModel
    tools: list[str] | None = Field(description="The tools the agent may call; null: every tool of the tenant")
    max_steps: int = Field(description="Most model turns in one task")
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    description: str = Field(default="", max_length=2000)
    capabilities: list[Capability] = Field(default_factory=list, max_length=50)
    metadata: Metadata = Field(default_factory=dict)
    system_prompt: str = Field(default="", max_length=20_000)
    model: AgentModel = Field(default_factory=AgentModel)
    tools: list[ToolName] | None = Field(default=None, max_length=200, description="null: every tool of the tenant")
    max_steps: int = Field(default=20, ge=1, le=1000)


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, max_length=2000)
    capabilities: list[Capability] | None = Field(default=None, max_length=50)
    metadata: Metadata | None = None
    system_prompt: str | None = Field(default=None, max_length=20_000)
    model: AgentModel | None = None
    tools: list[ToolName] | None = Field(default=None, max_length=200, description="null: every tool of the tenant")
    max_steps: int | None = Field(default=None, ge=1, le=1000)
    status: Status | None = None


@router.get("/v1/agents", response_model=Page[Agent], summary="List the tenant's agents.")
async def list_agents(
    principal: Annotated[Principal, Depends(require_scope("agents:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: Status | None = None,
    name_prefix: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    capability: Annotated[str | None, Query(max_length=100)] = None,
    include_deleted: bool = False,
) -> dict[str, Any]:
    """List the tenant's agents."""
    items, next_cursor = await store.list_agents(
        principal.tenant_id, page, status, name_prefix, capability, include_deleted
    )
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/agents", status_code=201, response_model=Agent, summary="Register an agent.")
async def create_agent(
    body: AgentCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("agents:write"))],
) -> dict[str, Any]:
    """Register an agent."""
    agent = await service.create_agent(principal.tenant_id, body.model_dump(), request.state.correlation_id)
    set_etag(response, agent["version"])
    response.headers["Location"] = f"/v1/agents/{agent['agent_id']}"
    return agent


@router.get("/v1/agents/{agent_id}", response_model=Agent, summary="Read an agent.")
async def get_agent(
    agent_id: UUID, response: Response, principal: Annotated[Principal, Depends(require_scope("agents:read"))]
) -> dict[str, Any]:
    """Read an agent."""
    agent = await service.get_agent(principal.tenant_id, agent_id)
    set_etag(response, agent["version"])
    return agent


@router.patch("/v1/agents/{agent_id}", response_model=Agent, summary="Update an agent (If-Match honoured).")
async def update_agent(
    agent_id: UUID,
    body: AgentUpdate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("agents:write"))],
) -> dict[str, Any]:
    """Update an agent (If-Match honoured)."""
    agent = await service.update_agent(
        principal.tenant_id,
        agent_id,
        {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in NULLABLE},
        expected_version(request),
        request.state.correlation_id,
    )
    set_etag(response, agent["version"])
    return agent


@router.delete("/v1/agents/{agent_id}", status_code=204, summary="Delete an agent (soft; If-Match honoured).")
async def delete_agent(
    agent_id: UUID, request: Request, principal: Annotated[Principal, Depends(require_scope("agents:write"))]
) -> None:
    """Delete an agent (soft; If-Match honoured)."""
    await service.delete_agent(principal.tenant_id, agent_id, expected_version(request), request.state.correlation_id)
