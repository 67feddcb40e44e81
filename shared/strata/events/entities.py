"""Entity events of the foundation: tenants and keys (L09) and agents (L01)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from strata.events.envelope import Event


class TenantCreated(Event):
    DETAIL_TYPE = "TenantCreated"
    SOURCE = "strata.api_gateway"
    name: str = Field(max_length=200)


class ApiKeyCreated(Event):
    DETAIL_TYPE = "ApiKeyCreated"
    SOURCE = "strata.api_gateway"
    key_id: UUID
    prefix: str = Field(max_length=32)
    scopes: list[str] = Field(max_length=50)


class AgentCreated(Event):
    DETAIL_TYPE = "AgentCreated"
    SOURCE = "strata.data"
    agent_id: UUID
    name: str = Field(max_length=200)
    did: str = Field(max_length=200)
