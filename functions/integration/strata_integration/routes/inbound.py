"""Inbound webhooks: the tenant's endpoints (create, read, change, rotate, delete, their deliveries, a dry run of
their mapping) and the public route senders deliver to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_integration.inbound import deliveries, endpoints, receiver
from strata_integration.inbound.mapping import MAX_CONDITIONS, FilterCondition, GoalMapping

router = APIRouter(tags=["inbound webhooks"])


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text holds no NUL characters")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
Description = Annotated[str, Field(max_length=2000), AfterValidator(_no_nul)]
Scheme = Literal["strata", "github", "slack"]
Secret = Annotated[
    str,
    Field(
        min_length=16,
        max_length=256,
        pattern=r"^[\x21-\x7e]+$",
        description="The secret configured on the sender's side (github: the webhook's secret; slack: the app's "
        "signing secret); omitted: one is generated and shown once",
    ),
]
Filter = Annotated[list[FilterCondition], Field(max_length=MAX_CONDITIONS)]
Outcome = Literal["processing", "accepted", "ignored", "rejected", "failed"]
Reader = Annotated[Principal, Depends(require_scope("webhooks:read"))]
Writer = Annotated[Principal, Depends(require_scope("webhooks:write"))]


class InboundWebhook(BaseModel):
    endpoint_id: UUID
    name: str
    description: str
    scheme: Scheme
    url_path: str = Field(description="Where senders deliver (POST, no credential: the signature is the proof)")
    secret_source: Literal["generated", "supplied"]
    mapping: GoalMapping
    filter: list[FilterCondition] = Field(description="Conditions a delivery must all meet to become a goal")
    enabled: bool
    version: int
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation still verifies (null: it no longer does)"
    )
    created_by: str
    created_at: datetime
    updated_at: datetime


class InboundWebhookWithSecret(InboundWebhook):
    secret: str | None = Field(
        description="The signing secret, shown only now (null when you supplied it): configure it on the sender"
    )


class InboundWebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    description: Description = ""
    scheme: Scheme = Field(
        description="strata: Strata-Signature (t=,v1= HMAC-SHA256); github: X-Hub-Signature-256; slack: "
        "X-Slack-Signature with X-Slack-Request-Timestamp (5 minutes)"
    )
    secret: Secret | None = None
    mapping: GoalMapping
    filter: Filter = Field(default_factory=list)
    enabled: bool = True


class InboundWebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    description: Description | None = None
    mapping: GoalMapping | None = None
    filter: Filter | None = None
    enabled: bool | None = None


class InboundSecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_s: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="How long the replaced secret keeps verifying beside the new one (0: it stops at once)",
    )
    secret: Secret | None = None


class InboundDelivery(BaseModel):
    delivery_id: UUID
    endpoint_id: UUID
    verified: bool = Field(description="Whether its signature verified (rejected ones that did not are kept apart)")
    sender_delivery_id: str | None = Field(description="X-GitHub-Delivery, Slack's event_id, Strata-Delivery-Id")
    event: str = Field(description="The sender's event name (X-GitHub-Event, Slack's event type, Strata-Event-Type)")
    outcome: Outcome
    reason: str | None = Field(description="Why it was rejected, ignored or failed")
    goal_id: UUID | None = Field(description="The goal it submitted")
    goal_text: str | None
    content_type: str
    body_bytes: int
    body_sha256: str
    attempts: int = Field(description="How many times it arrived (a sender's retries and redeliveries)")
    created_at: datetime
    last_received_at: datetime
    updated_at: datetime


class InboundPreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: JsonValue = Field(description="A payload as the sender would deliver it")
    event: str = Field(default="", max_length=200, description="The sender's event name ($event)")
    headers: dict[str, Annotated[str, Field(max_length=1000)]] = Field(default_factory=dict, max_length=50)
    sender_delivery_id: str = Field(default="", max_length=200, description="$delivery")
    mapping: GoalMapping | None = Field(default=None, description="Try this mapping instead of the endpoint's")
    filter: Filter | None = Field(default=None, description="Try this filter instead of the endpoint's")


class InboundPreviewGoal(BaseModel):
    text: str
    constraints: dict[str, Any]
    strategy: str
    on_behalf_of: str


class InboundPreview(BaseModel):
    outcome: Literal["accepted", "ignored", "failed"]
    reason: str | None
    goal: InboundPreviewGoal | None = Field(description="The goal it would submit (POST /v1/goals body)")


@router.get(
    "/v1/inbound-webhooks",
    response_model=Page[InboundWebhook],
    response_model_exclude_unset=True,
    summary="List the tenant's inbound webhooks.",
)
async def list_inbound_webhooks(
    principal: Reader, page: Annotated[PageRequest, Depends(page_request)]
) -> dict[str, Any]:
    """List the tenant's inbound webhook endpoints, newest first."""
    items, next_cursor = await endpoints.list_page(principal.tenant_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/v1/inbound-webhooks",
    response_model=InboundWebhookWithSecret,
    response_model_exclude_unset=True,
    status_code=201,
    summary="Create an inbound webhook (its secret is shown once).",
)
async def create_inbound_webhook(body: InboundWebhookCreate, principal: Writer, response: Response) -> dict[str, Any]:
    """Create an inbound webhook endpoint: its URL path, and its secret shown only in this answer."""
    endpoint, secret = await endpoints.create(
        principal.tenant_id,
        principal.principal_id,
        name=body.name,
        description=body.description,
        scheme=body.scheme,
        secret=body.secret,
        mapping=body.mapping,
        filter=body.filter,
        enabled=body.enabled,
    )
    response.headers["Location"] = f"/v1/inbound-webhooks/{endpoint['endpoint_id']}"
    set_etag(response, endpoint["version"])
    return {**endpoint, "secret": secret}


@router.get(
    "/v1/inbound-webhooks/{endpoint_id}",
    response_model=InboundWebhook,
    response_model_exclude_unset=True,
    summary="Read an inbound webhook.",
)
async def get_inbound_webhook(endpoint_id: UUID, principal: Reader, response: Response) -> dict[str, Any]:
    """Read an inbound webhook endpoint (never its secret)."""
    endpoint = await endpoints.get(principal.tenant_id, endpoint_id)
    set_etag(response, endpoint["version"])
    return endpoint


@router.patch(
    "/v1/inbound-webhooks/{endpoint_id}",
    response_model=InboundWebhook,
    response_model_exclude_unset=True,
    summary="Change an inbound webhook.",
)
async def update_inbound_webhook(
    endpoint_id: UUID, body: InboundWebhookUpdate, principal: Writer, request: Request, response: Response
) -> dict[str, Any]:
    """Change an endpoint's name, description, mapping, filter or whether it is enabled (If-Match honoured)."""
    changes = {name: getattr(body, name) for name in body.model_fields_set if getattr(body, name) is not None}
    endpoint = await endpoints.update(principal.tenant_id, endpoint_id, expected_version(request), changes)
    set_etag(response, endpoint["version"])
    return endpoint


@router.delete(
    "/v1/inbound-webhooks/{endpoint_id}", status_code=204, summary="Delete an inbound webhook and its deliveries."
)
async def delete_inbound_webhook(endpoint_id: UUID, principal: Writer, request: Request) -> Response:
    """Delete an endpoint with its secrets and delivery records (If-Match honoured); its URL stops answering."""
    await endpoints.delete(principal.tenant_id, endpoint_id, expected_version(request))
    return Response(status_code=204)


@router.post(
    "/v1/inbound-webhooks/{endpoint_id}/rotate-secret",
    response_model=InboundWebhookWithSecret,
    response_model_exclude_unset=True,
    summary="Rotate an inbound webhook's secret (the old one verifies for a while).",
)
async def rotate_inbound_webhook(
    endpoint_id: UUID, body: InboundSecretRotation, principal: Writer, request: Request, response: Response
) -> dict[str, Any]:
    """Give the endpoint a new secret, shown once; the current one keeps verifying for `overlap_s` (If-Match
    honoured)."""
    endpoint, secret = await endpoints.rotate(
        principal.tenant_id, endpoint_id, expected_version(request), body.overlap_s, body.secret
    )
    set_etag(response, endpoint["version"])
    return {**endpoint, "secret": secret}


@router.get(
    "/v1/inbound-webhooks/{endpoint_id}/deliveries",
    response_model=Page[InboundDelivery],
    summary="What arrived at an inbound webhook, newest first.",
)
async def list_inbound_deliveries(
    endpoint_id: UUID,
    principal: Reader,
    page: Annotated[PageRequest, Depends(page_request)],
    outcome: Annotated[Outcome | None, Query(description="Only deliveries with this outcome")] = None,
) -> dict[str, Any]:
    """What arrived at an endpoint, newest first: verified or why rejected, ignored, the goal it submitted."""
    items, next_cursor = await deliveries.list_page(principal.tenant_id, endpoint_id, page, outcome)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/v1/inbound-webhooks/{endpoint_id}/preview",
    response_model=InboundPreview,
    summary="What a payload would become at an inbound webhook (nothing is submitted).",
)
async def preview_inbound_webhook(endpoint_id: UUID, body: InboundPreviewRequest, principal: Reader) -> dict[str, Any]:
    """Apply the endpoint's filter and mapping (or the ones given) to a sample payload: ignored and why, failed
    and why, or the goal it would submit. Nothing is recorded or submitted."""
    endpoint = await endpoints.get(principal.tenant_id, endpoint_id)
    mapping = body.mapping or GoalMapping.model_validate(endpoint["mapping"])
    conditions = body.filter if body.filter is not None else endpoint["filter"]
    return receiver.preview(
        endpoint["name"],
        endpoint_id,
        endpoint["scheme"],
        mapping,
        [c if isinstance(c, FilterCondition) else FilterCondition.model_validate(c) for c in conditions],
        body.payload,
        body.event,
        body.headers,
        body.sender_delivery_id,
    )


HOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A handshake (GitHub's ping, Slack's url_verification: {challenge}) or a delivery the "
        "filter ignored; nothing was submitted"
    },
    202: {"description": "Accepted: the goal it submitted (a resent delivery answers the same goal)"},
    401: {"description": "Not signed with the endpoint's secret, or no such endpoint (the same answer for both)"},
    403: {"description": "The endpoint is disabled"},
    409: {"description": "An earlier attempt of this delivery is still being processed; retry shortly"},
    415: {"description": "Not JSON or form-encoded"},
    422: {"description": "The payload misses a field the mapping needs, or planning refused the goal"},
    429: {"description": "The endpoint is over its rate limit"},
    503: {"description": "Planning is unavailable; retry the delivery (GitHub and Slack retry 5xx)"},
}


@router.post(
    "/v1/hooks/{endpoint_id}",
    response_model=None,
    status_code=202,
    summary="Deliver a webhook to an inbound endpoint (public: the signature is the credential).",
    responses=HOOK_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": False,
            "description": "The sender's payload, signed as the endpoint's scheme says",
            "content": {
                "application/json": {"schema": {}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            },
        }
    },
)
async def receive_hook(endpoint_id: UUID, request: Request) -> Response:
    """Deliver a webhook: verified by the endpoint's scheme, recorded once per delivery id, turned into a goal."""
    body = await request.body()
    answer = await receiver.receive(endpoint_id, dict(request.headers), body, request.state.correlation_id)
    if answer.body is None:
        return Response(status_code=answer.status, headers=answer.headers)
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
