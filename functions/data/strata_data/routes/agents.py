"""Agents: list and create (each gets a DID)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.pagination import add_list_route
from strata.web import require_scope
from strata_data import service

router = APIRouter(tags=["agents"])


class Agent(BaseModel):
    agent_id: UUID
    name: str
    did: str
    capabilities: list[str]
    status: str
    created_at: datetime
    updated_at: datetime


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    capabilities: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=50)


add_list_route(
    router,
    "/v1/agents",
    Agent,
    table="agents",
    id_column="agent_id",
    scope="agents:read",
    summary="List the tenant's agents, newest first.",
)


@router.post("/v1/agents", status_code=201, response_model=Agent, summary="Register an agent.")
async def create_agent(
    body: AgentCreate, request: Request, principal: Annotated[Principal, Depends(require_scope("agents:write"))]
) -> dict[str, Any]:
    """Register an agent."""
    return await service.create_agent(principal.tenant_id, body.name, body.capabilities, request.state.correlation_id)
