"""The model catalogue: the platform's entries and the tenant's own, which it manages here; and model usage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_model_gateway import catalogue, metering, provider_health
from strata_model_gateway.catalogue import Capability, LatencyClass, ModelSpec

router = APIRouter(tags=["models"])


class Model(ModelSpec):
    model_id: UUID
    source: Literal["tenant", "platform"] = Field(description="platform entries are configured by the operator")
    version: int
    created_at: datetime | None
    updated_at: datetime | None


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_model: str | None = Field(default=None, min_length=1, max_length=200)
    context_window: int | None = Field(default=None, ge=1, le=10_000_000)
    capabilities: list[Capability] | None = Field(default=None, max_length=6)
    input_usd_per_mtok: Decimal | None = Field(default=None, ge=0, le=10_000, decimal_places=6)
    output_usd_per_mtok: Decimal | None = Field(default=None, ge=0, le=10_000, decimal_places=6)
    cached_usd_per_mtok: Decimal | None = Field(default=None, ge=0, le=10_000, decimal_places=6)
    latency_class: LatencyClass | None = None
    quality: float | None = Field(default=None, ge=0, le=1)
    enabled: bool | None = None


class ProviderFailure(BaseModel):
    kind: str = Field(description="timeout, unavailable, rate_limited, auth, malformed, cut or other")
    message: str
    status: int | None = Field(description="The provider's HTTP status, when it answered one")
    at: datetime


class ModelProvider(BaseModel):
    name: str = Field(description="What catalogue entries name in `provider`")
    kind: Literal["ollama", "openai", "bedrock", "embedded"]
    breaker: Literal["closed", "open", "half_open", "unknown"] = Field(
        description="open: calls skip the provider; half_open: the next call probes it; unknown: Redis is down"
    )
    consecutive_failures: int | None
    breaker_changed_at: datetime | None = Field(description="When the breaker last opened, probed or closed")
    last_failure: ProviderFailure | None = Field(description="The latest failure in the last day, if any")


class ModelProviders(BaseModel):
    providers: list[ModelProvider] = Field(description="Every provider endpoint of the deployment, by name")


UsageGroup = Literal["hour", "day", "model", "run", "purpose"]
UsageSplit = Literal["model", "purpose"]


class ModelUsageFigures(BaseModel):
    key: str | None = Field(
        description="The group: a UTC hour (2026-11-28T13:00Z), a UTC day (2026-11-28), a model, run or purpose"
    )
    split: str | None = Field(default=None, description="The model or purpose; present only with split_by")
    calls: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_micro_usd: int
    p50_latency_ms: float


class ModelUsageTotals(BaseModel):
    calls: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_micro_usd: int


class ModelUsage(BaseModel):
    from_: date = Field(alias="from")
    to: date
    group_by: UsageGroup
    split_by: UsageSplit | None = Field(description="What each group is split by, if anything")
    groups: list[ModelUsageFigures] = Field(description="Ordered by key, then split")
    totals: ModelUsageTotals = Field(description="Over every call, however grouped or split")


@router.get("/v1/models", response_model=Page[Model], summary="List the models the tenant can call.")
async def list_models(
    principal: Annotated[Principal, Depends(require_scope("models:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """List the models the tenant can call: the platform's first, then its own, newest first."""
    items, next_cursor = await catalogue.list_page(principal.tenant_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/models", response_model=Model, status_code=201, summary="Add a model to the tenant's catalogue.")
async def create_model(
    body: ModelSpec,
    principal: Annotated[Principal, Depends(require_scope("models:write"))],
    response: Response,
) -> dict[str, Any]:
    """Add a model to the tenant's catalogue."""
    entry = await catalogue.create(principal.tenant_id, body)
    response.headers["Location"] = f"/v1/models/{entry.model_id}"
    set_etag(response, entry.version)
    return {**entry.model_dump(), "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC)}


@router.get(
    "/v1/models/usage",
    response_model=ModelUsage,
    response_model_by_alias=True,
    response_model_exclude_unset=True,  # a group carries `split` only when split
    summary="Model calls, tokens and cost by hour, day, model, run or purpose.",
)
async def model_usage(
    principal: Annotated[Principal, Depends(require_scope("models:read"))],
    from_: Annotated[date | None, Query(alias="from", description="First UTC day; default 30 days ago")] = None,
    to: Annotated[date | None, Query(description="Last UTC day; default today")] = None,
    group_by: Annotated[
        UsageGroup,
        Query(description=f"hour: UTC hours, at most {metering.MAX_HOUR_DAYS} days per query; day: UTC days"),
    ] = "day",
    split_by: Annotated[
        UsageSplit | None, Query(description="Split each group by model or purpose (not what it is grouped by)")
    ] = None,
    run_id: UUID | None = None,
) -> dict[str, Any]:
    """Model calls, tokens and cost by hour, day, model, run or purpose, optionally split by model or purpose."""
    end = to or datetime.now(UTC).date()
    start = from_ or end - timedelta(days=30)
    return await metering.summary(principal.tenant_id, start, end, group_by, run_id, split_by)


@router.get(
    "/v1/models/providers",
    response_model=ModelProviders,
    summary="The deployment's model providers: their breakers and latest failures.",
)
async def list_model_providers(
    principal: Annotated[Principal, Depends(require_scope("models:read"))],
) -> dict[str, Any]:
    """The deployment's model providers: their breakers and latest failures."""
    return {"providers": await provider_health.provider_health()}


@router.get("/v1/models/{model_id}", response_model=Model, summary="Read a catalogue entry.")
async def get_model(
    model_id: UUID, principal: Annotated[Principal, Depends(require_scope("models:read"))], response: Response
) -> dict[str, Any]:
    """Read a catalogue entry."""
    entry = await catalogue.get(principal.tenant_id, model_id)
    set_etag(response, entry.version)
    return {**entry.model_dump(), "created_at": None, "updated_at": None}


@router.patch("/v1/models/{model_id}", response_model=Model, summary="Change a tenant model (If-Match honoured).")
async def update_model(
    model_id: UUID,
    body: ModelUpdate,
    principal: Annotated[Principal, Depends(require_scope("models:write"))],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Change a tenant model (If-Match honoured)."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    entry = await catalogue.update(principal.tenant_id, model_id, changes, expected_version(request))
    set_etag(response, entry.version)
    return {**entry.model_dump(), "created_at": None, "updated_at": datetime.now(UTC)}


@router.delete("/v1/models/{model_id}", status_code=204, summary="Remove a tenant model (If-Match honoured).")
async def delete_model(
    model_id: UUID, principal: Annotated[Principal, Depends(require_scope("models:write"))], request: Request
) -> Response:
    """Remove a tenant model (If-Match honoured)."""
    await catalogue.delete(principal.tenant_id, model_id, expected_version(request))
    return Response(status_code=204)
