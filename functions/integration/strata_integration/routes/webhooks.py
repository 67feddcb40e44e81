"""Outbound webhooks: subscriptions (the signing secret shown once; rotated with an overlap), test pings, and
deliveries with their attempts, redeliverable one by one or all the dead-lettered ones of a webhook."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_integration.webhooks import service

router = APIRouter(tags=["webhooks"])

WebhookStatus = Literal["active", "disabled"]
DeliveryStatus = Literal["pending", "succeeded", "dead_lettered"]
EventType = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^(\*|[A-Z][A-Za-z0-9]*)$")]
FilterScalar = StrictStr | StrictInt | StrictFloat | StrictBool | None
FilterValue = FilterScalar | list[FilterScalar]
Filters = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=330)], FilterValue],
    Field(
        max_length=20,
        description="Field path (dots into nested objects) -> a value (equality) or a list of values (any of them); "
        "every filter must hold. Paths name fields of the subscribed event types.",
    ),
]
Url = Annotated[str, Field(min_length=1, max_length=2048, description="https:// (http:// only where allowed)")]
Description = Annotated[str, Field(max_length=500)]


class Webhook(BaseModel):
    webhook_id: UUID
    url: str
    description: str
    event_types: list[str] = Field(description="Event types delivered, or ['*'] for every subscribable type")
    filters: dict[str, Any]
    status: WebhookStatus
    disabled_reason: str | None
    version: int
    consecutive_dead_letters: int = Field(description="Dead-lettered deliveries since the last success")
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="While a rotation's overlap lasts: when the previous secret stops signing"
    )
    last_delivery_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(Webhook):
    secret: str = Field(description="The signing secret: shown this once, never again")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url
    event_types: list[EventType] = Field(min_length=1, max_length=50)
    filters: Filters = Field(default_factory=dict)
    description: Description = ""


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=50)
    filters: Filters | None = None
    description: Description | None = None
    status: WebhookStatus | None = Field(default=None, description="active turns a disabled webhook back on")


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_s: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="How long the replaced secret keeps signing beside the new one (0: it stops at once)",
    )


class DeliveryAttempt(BaseModel):
    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None = Field(description="The receiver's answer; null when there was none")
    error: str | None
    response_excerpt: str | None = Field(description="The answer's first bytes")
    signed_with: int = Field(description="How many secrets signed it (2 during a rotation's overlap)")


class Delivery(BaseModel):
    delivery_id: UUID
    webhook_id: UUID
    event_id: UUID
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    redeliveries: int
    next_attempt_at: datetime | None = Field(description="While pending: when the next attempt is due")
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    dead_lettered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DeliveryDetail(Delivery):
    payload: dict[str, Any] = Field(description="The body sent")
    attempts: list[DeliveryAttempt] = Field(description="Its attempts, oldest first (the newest 100)")


class RedeliverFailed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: datetime | None = Field(default=None, description="Only deliveries created at or after this")
    limit: int = Field(default=100, ge=1, le=1000)


class Redelivered(BaseModel):
    redelivered: int
    delivery_ids: list[UUID]


@router.post(
    "/v1/webhooks", status_code=201, response_model=WebhookWithSecret, summary="Subscribe a URL to event types."
)
async def create_webhook(
    body: WebhookCreate, response: Response, principal: Annotated[Principal, Depends(require_scope("webhooks:write"))]
) -> dict[str, Any]:
    """Subscribe a URL to event types (with filters); the answer carries the signing secret, shown only this once."""
    made: dict[str, Any] = await service.create(
        principal.tenant_id, body.url, body.description, body.event_types, body.filters
    )
    response.headers["Location"] = f"/v1/webhooks/{made['webhook_id']}"
    set_etag(response, made["version"])
    return made


@router.get("/v1/webhooks", response_model=Page[Webhook], summary="List the tenant's webhooks, newest first.")
async def list_webhooks(
    principal: Annotated[Principal, Depends(require_scope("webhooks:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: Annotated[WebhookStatus | None, Query()] = None,
) -> dict[str, Any]:
    """List the tenant's webhooks, newest first (optionally by status)."""
    items, next_cursor = await service.list_page(principal.tenant_id, page, status)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/webhooks/{webhook_id}", response_model=Webhook, summary="Read a webhook.")
async def get_webhook(
    webhook_id: UUID, response: Response, principal: Annotated[Principal, Depends(require_scope("webhooks:read"))]
) -> dict[str, Any]:
    """Read a webhook (never its secret)."""
    found: dict[str, Any] = await service.get(principal.tenant_id, webhook_id)
    set_etag(response, found["version"])
    return found


@router.patch("/v1/webhooks/{webhook_id}", response_model=Webhook, summary="Change a webhook (If-Match).")
async def update_webhook(
    webhook_id: UUID,
    body: WebhookUpdate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("webhooks:write"))],
) -> dict[str, Any]:
    """Change a webhook's URL, event types, filters, description or status (If-Match honoured)."""
    changed: dict[str, Any] = await service.update(
        principal.tenant_id,
        principal.principal_id,
        webhook_id,
        expected_version(request),
        body.model_dump(exclude_none=True),
    )
    set_etag(response, changed["version"])
    return changed


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook (If-Match).")
async def delete_webhook(
    webhook_id: UUID, request: Request, principal: Annotated[Principal, Depends(require_scope("webhooks:write"))]
) -> Response:
    """Delete a webhook with its deliveries (If-Match honoured)."""
    await service.delete(principal.tenant_id, webhook_id, expected_version(request))
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Rotate a webhook's signing secret.",
)
async def rotate_webhook_secret(
    webhook_id: UUID,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("webhooks:write"))],
    body: Annotated[SecretRotation | None, Body()] = None,
) -> dict[str, Any]:
    """A new signing secret, shown only this once; the old one keeps signing beside it for the overlap (If-Match
    honoured)."""
    overlap_s = (body or SecretRotation()).overlap_s
    rotated: dict[str, Any] = await service.rotate_secret(
        principal.tenant_id, webhook_id, overlap_s, expected_version(request)
    )
    set_etag(response, rotated["version"])
    return rotated


@router.post(
    "/v1/webhooks/{webhook_id}/ping",
    status_code=201,
    response_model=DeliveryDetail,
    summary="Send a webhook a test delivery.",
)
async def ping_webhook(
    webhook_id: UUID, response: Response, principal: Annotated[Principal, Depends(require_scope("webhooks:write"))]
) -> dict[str, Any]:
    """Send a test delivery (WebhookPing) at once; the answer shows the attempt (a failed one is retried)."""
    made: dict[str, Any] = await service.ping(principal.tenant_id, webhook_id)
    response.headers["Location"] = f"/v1/webhook-deliveries/{made['delivery_id']}"
    return made


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    response_model=Page[Delivery],
    summary="A webhook's deliveries, newest first.",
)
async def list_deliveries(
    webhook_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("webhooks:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> dict[str, Any]:
    """A webhook's deliveries, newest first (optionally by status)."""
    items, next_cursor = await service.deliveries_page(principal.tenant_id, webhook_id, page, status)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/v1/webhooks/{webhook_id}/redeliver-failed",
    status_code=202,
    response_model=Redelivered,
    summary="Redeliver a webhook's dead-lettered deliveries.",
)
async def redeliver_failed(
    webhook_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("webhooks:write"))],
    body: Annotated[RedeliverFailed | None, Body()] = None,
) -> dict[str, Any]:
    """Redeliver a webhook's dead-lettered deliveries, oldest first, each with a new round of attempts."""
    chosen = body or RedeliverFailed()
    result: dict[str, Any] = await service.redeliver_failed(principal.tenant_id, webhook_id, chosen.since, chosen.limit)
    return result


@router.get(
    "/v1/webhook-deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="Read a webhook delivery with its attempts.",
)
async def get_delivery(
    delivery_id: UUID, principal: Annotated[Principal, Depends(require_scope("webhooks:read"))]
) -> dict[str, Any]:
    """Read a webhook delivery: its body and its attempts (status code, duration, error, response excerpt)."""
    found: dict[str, Any] = await service.delivery(principal.tenant_id, delivery_id)
    return found


@router.post(
    "/v1/webhook-deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryDetail,
    summary="Redeliver a webhook delivery.",
)
async def redeliver(
    delivery_id: UUID, principal: Annotated[Principal, Depends(require_scope("webhooks:write"))]
) -> dict[str, Any]:
    """Send a finished delivery again (same event, same delivery id) with a new round of attempts."""
    found: dict[str, Any] = await service.redeliver(principal.tenant_id, delivery_id)
    return found
