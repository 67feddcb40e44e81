"""Entity events: tenants and keys (L09); agents, documents, configuration and sessions (L01)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from strata.events.common import Name
from strata.events.envelope import Event


class TenantCreated(Event):
    DETAIL_TYPE = "TenantCreated"
    SOURCE = "strata.api_gateway"
    AGGREGATE: ClassVar[str] = "tenant_id"
    name: Name


class TenantUpdated(Event):
    DETAIL_TYPE = "TenantUpdated"
    SOURCE = "strata.api_gateway"
    AGGREGATE: ClassVar[str] = "tenant_id"
    version: int = Field(ge=1)
    changed: list[Literal["status", "tier", "cors_origins"]] = Field(min_length=1, max_length=3)
    status: Literal["active", "suspended"]
    tier: str = Field(max_length=50)


class ApiKeyCreated(Event):
    DETAIL_TYPE = "ApiKeyCreated"
    SOURCE = "strata.api_gateway"
    AGGREGATE: ClassVar[str] = "key_id"
    key_id: UUID
    prefix: str = Field(max_length=32)
    scopes: list[str] = Field(max_length=50)


class ApiKeyRotated(Event):
    DETAIL_TYPE = "ApiKeyRotated"
    SOURCE = "strata.api_gateway"
    AGGREGATE: ClassVar[str] = "key_id"
    key_id: UUID
    new_key_id: UUID
    old_key_expires_at: datetime


class ApiKeyRevoked(Event):
    DETAIL_TYPE = "ApiKeyRevoked"
    SOURCE = "strata.api_gateway"
    AGGREGATE: ClassVar[str] = "key_id"
    key_id: UUID


class AgentCreated(Event):
    DETAIL_TYPE = "AgentCreated"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "agent_id"
    agent_id: UUID
    name: Name
    did: str = Field(max_length=200)


class AgentUpdated(Event):
    DETAIL_TYPE = "AgentUpdated"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "agent_id"
    agent_id: UUID
    version: int = Field(ge=1)
    changed: list[str] = Field(max_length=20, description="Names of the fields this update changed")
    status: Literal["active", "paused", "retired"]


class AgentDeleted(Event):
    DETAIL_TYPE = "AgentDeleted"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "agent_id"
    agent_id: UUID


class DocumentCreated(Event):
    DETAIL_TYPE = "DocumentCreated"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "document_id"
    document_id: UUID
    title: Name
    version: int = Field(ge=1)


class DocumentUpdated(Event):
    DETAIL_TYPE = "DocumentUpdated"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "document_id"
    document_id: UUID
    version: int = Field(ge=2)


class DocumentDeleted(Event):
    DETAIL_TYPE = "DocumentDeleted"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "document_id"
    document_id: UUID


class ConfigurationChanged(Event):
    DETAIL_TYPE = "ConfigurationChanged"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "configuration_id"
    configuration_id: UUID
    namespace: str = Field(max_length=100)
    key: str = Field(max_length=200)
    version: int = Field(ge=1)
    deleted: bool = False


class SessionStarted(Event):
    DETAIL_TYPE = "SessionStarted"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "session_id"
    session_id: UUID
    agent_id: UUID | None = None


class SessionEnded(Event):
    DETAIL_TYPE = "SessionEnded"
    SOURCE = "strata.data"
    AGGREGATE: ClassVar[str] = "session_id"
    session_id: UUID
    reason: Literal["closed", "expired"]
