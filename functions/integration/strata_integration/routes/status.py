"""Platform status: every layer and every dependency."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from strata.auth import Principal
from strata.web import require_scope
from strata_integration.status import platform_status

router = APIRouter(tags=["status"])

Breaker = Literal["closed", "open", "half_open", "unknown"]


class LatencyHistory(BaseModel):
    kept: bool = Field(description="False while Redis is down: each layer's figures then cover this check only")
    size: int = Field(description="How many of each layer's latest answered checks the figures span, at most")


class LayerStatus(BaseModel):
    layer: str
    number: str = Field(description="L01 to L11")
    reachable: bool = Field(description="The layer's own function answered its readiness probe through the API")
    status: Literal["ok", "unavailable", "unreachable"] = Field(
        description="unavailable: the layer answered, but one of its own dependencies failed"
    )
    http_status: int | None
    version: str | None
    latency_ms: float | None = Field(description="This check's round trip through the API")
    latency_p50_ms: float | None = Field(description="The median round trip of the layer's latest answered checks")
    latency_max_ms: float | None
    latency_samples: int = Field(description="How many checks the median and maximum span")
    last_ok_at: datetime | None = Field(description="When the layer last answered ready")
    failing_dependencies: list[str] = Field(description="What the layer's own readiness probe found failing")
    peer_breaker: Breaker = Field(description="The breaker the other layers' calls to this one go through")
    error: str | None


class DependencyStatus(BaseModel):
    name: str
    status: Literal["ok", "degraded", "error", "unknown"]
    critical: bool = Field(description="Whether its failure takes the platform down")
    latency_ms: float | None
    error: str | None


class PostgresStatus(DependencyStatus):
    kind: Literal["postgres"]
    version: str | None = None
    connections: int | None = Field(default=None, description="Client connections open on the server")
    max_connections: int | None = None


class RedisStatus(DependencyStatus):
    kind: Literal["redis"]
    version: str | None = None
    used_memory_bytes: int | None = None
    max_memory_bytes: int | None = Field(default=None, description="None: no limit set (or not disclosed)")


class EventBusStatus(DependencyStatus):
    kind: Literal["event_bus"]


class DeadLetterQueueStatus(DependencyStatus):
    kind: Literal["dead_letter_queue"]
    depth: int | None = Field(default=None, description="Every message it holds: visible + in_flight + delayed")
    visible: int | None = None
    in_flight: int | None = Field(default=None, description="Received by a consumer and not yet deleted")
    delayed: int | None = None


class ModelProviderFailure(BaseModel):
    kind: str
    message: str
    status: int | None
    at: datetime | None


class ModelProviderStatus(DependencyStatus):
    kind: Literal["model_provider"]
    provider_kind: str | None = Field(description="ollama, openai, bedrock or embedded")
    breaker: Breaker
    consecutive_failures: int | None
    last_failure: ModelProviderFailure | None = Field(description="Its latest failure in the last day, if any")


Dependency = Annotated[
    PostgresStatus | RedisStatus | EventBusStatus | DeadLetterQueueStatus | ModelProviderStatus,
    Field(discriminator="kind"),
]


class PlatformStatus(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(
        description="down: Postgres, L09's authorizer or the API itself is gone; degraded: anything else is not ok"
    )
    reasons: list[str] = Field(description="Why it is not ok, most serious first")
    checked_at: datetime
    duration_ms: float
    cached: bool = Field(description="An answer of a check made a moment ago (status_cache_s), not a new one")
    latency_history: LatencyHistory
    layers: list[LayerStatus]
    dependencies: list[Dependency] = Field(
        description="Postgres, Redis, the event bus, each dead-letter queue and each model provider"
    )


@router.get("/v1/status", response_model=PlatformStatus, summary="Status of every layer and every dependency.")
async def get_status(
    request: Request, principal: Annotated[Principal, Depends(require_scope("status:read"))]
) -> dict[str, Any]:
    """Status of every layer and every dependency."""
    return await platform_status(principal.tenant_id, request.state.correlation_id)
