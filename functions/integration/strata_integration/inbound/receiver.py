"""The receiving side of inbound webhooks (`POST /v1/hooks/{endpoint_id}`, public): find the endpoint, verify the
sender's signature, record the delivery once per sender delivery id, answer handshakes (GitHub's ping, Slack's
url_verification), apply the filter and the mapping, and submit the goal to L05 as the endpoint's tenant.

An unknown endpoint and a bad signature get the same 401 (the same type and detail): a sender holding the right
URL and secret never sees it, and anyone else learns nothing about which ids exist. 401 rather than 404 because
the sender's own log (GitHub's "Recent Deliveries") then says what to fix when it is the secret that is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import peers
from strata.config import get_settings
from strata.errors import (
    BadGatewayError,
    BadRequestError,
    ConflictError,
    DependencyUnavailableError,
    ForbiddenError,
    GoalRefusedError,
    MappingFailedError,
    PayloadTooLargeError,
    ProblemError,
    TooManyRequestsError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from strata.signatures import GITHUB_HEADER, STRATA_HEADER, SignatureError, verify_github, verify_slack, verify_strata
from strata.web import json_depth
from strata_integration.inbound import deliveries, endpoints
from strata_integration.inbound.deliveries import Arrival, Claim
from strata_integration.inbound.endpoints import Endpoint
from strata_integration.inbound.mapping import (
    HIDDEN_HEADERS,
    Delivery,
    FilterCondition,
    GoalMapping,
    RenderError,
    clean_text,
    compile_template,
    render,
    why_ignored,
)
from strata_integration.inbound.settings import inbound_settings

logger = Logger(child=True)

NOT_SIGNED = "the request is not signed with this endpoint's secret, or there is no such endpoint"
FORM = "application/x-www-form-urlencoded"
MAX_EVENT_CHARS = 200
MAX_SENDER_ID_CHARS = 200
BUSY_RETRY_AFTER_S = 2  # an earlier attempt settles within a peer call's time; a lapsed claim is taken over
SLACK_NO_RETRY = {"X-Slack-No-Retry": "1"}  # Slack retries any other error up to 3 times; a refusal will not change


@dataclass(frozen=True)
class HookAnswer:
    """What the receiving route answers: a status and a JSON body (None: no body), with extra headers."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parsed:
    """A verified delivery's body, read: its payload (None when unreadable, `problem` says why), the sender's event
    name and delivery id, and the key it is recorded under."""

    payload: Any
    problem: ProblemError | None
    media_type: str
    event: str
    sender_delivery_id: str | None
    dedupe_key: str


def _media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _json(body: bytes) -> Any:
    if json_depth(body) > get_settings().max_json_depth:
        raise BadRequestError(f"the JSON body nests deeper than {get_settings().max_json_depth} levels")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequestError("the body is not valid JSON") from None


def read_payload(media_type: str, body: bytes) -> Any:
    """The payload of a body: JSON, or a form (Slack's slash commands send fields; Slack's interactivity and
    GitHub's form deliveries send the JSON in a `payload` field)."""
    if not body.strip():
        return {}
    if media_type == FORM:
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=1000)
        except (UnicodeDecodeError, ValueError):
            raise BadRequestError("the form body is not UTF-8 text of at most 1000 fields") from None
        form: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
        embedded = form.get("payload")
        if isinstance(embedded, str) and embedded.lstrip().startswith(("{", "[")):
            return _json(embedded.encode("utf-8"))
        return form
    if media_type in ("", "application/json") or media_type.endswith("+json"):
        return _json(body)
    raise UnsupportedMediaTypeError(f"send application/json or {FORM}, not {media_type}")


def _text(value: Any, limit: int) -> str:
    return clean_text(value, limit).strip() if isinstance(value, str) else ""


def event_name(scheme: str, headers: dict[str, str], payload: Any) -> str:
    """The sender's name for what happened: GitHub's X-GitHub-Event; for Slack the event's type (event_callback),
    slash_command, or the payload's type (url_verification, block_actions...); Strata-Event-Type."""
    if scheme == "github":
        return _text(headers.get("x-github-event"), MAX_EVENT_CHARS)
    if scheme == "strata":
        return _text(headers.get("strata-event-type"), MAX_EVENT_CHARS)
    if not isinstance(payload, dict):
        return ""
    inner = payload.get("event")
    if payload.get("type") == "event_callback" and isinstance(inner, dict):
        return _text(inner.get("type"), MAX_EVENT_CHARS)
    if "command" in payload and "type" not in payload:
        return "slash_command"
    return _text(payload.get("type"), MAX_EVENT_CHARS)


def sender_delivery_id(scheme: str, headers: dict[str, str], payload: Any) -> str | None:
    """The sender's id of this delivery (a resend carries the same): X-GitHub-Delivery; Slack's event_id, else
    the interaction's trigger_id; Strata-Delivery-Id (or Idempotency-Key)."""
    if scheme == "github":
        found = headers.get("x-github-delivery")
    elif scheme == "slack":
        found = payload.get("event_id") or payload.get("trigger_id") if isinstance(payload, dict) else None
    else:
        found = headers.get("strata-delivery-id") or headers.get("idempotency-key")
    return _text(found, MAX_SENDER_ID_CHARS) or None


def dedupe_key(sender_id: str | None, body_sha256: str) -> str:
    """The key a verified delivery is recorded under: the sender's delivery id, else the body's hash (a sender
    that names no delivery resends the same bytes)."""
    if sender_id is None:
        return f"sha256:{body_sha256}"
    return f"id:{sender_id}"


def parse(scheme: str, headers: dict[str, str], body: bytes, body_sha256: str) -> Parsed:
    media_type = _media_type(headers)
    payload: Any = None
    problem: ProblemError | None = None
    try:
        payload = read_payload(media_type, body)
    except ProblemError as exc:
        problem = exc
    sender = sender_delivery_id(scheme, headers, payload)
    return Parsed(
        payload=payload,
        problem=problem,
        media_type=media_type,
        event=event_name(scheme, headers, payload),
        sender_delivery_id=sender,
        dedupe_key=dedupe_key(sender, body_sha256),
    )


def verify(endpoint: Endpoint, headers: dict[str, str], body: bytes) -> None:
    """Check the delivery's signature by the endpoint's scheme against its secrets; raises SignatureError."""
    if endpoint.scheme == "github":
        verify_github(headers.get(GITHUB_HEADER), body, endpoint.secrets)
    elif endpoint.scheme == "slack":
        verify_slack(headers, body, endpoint.secrets)
    else:
        verify_strata(headers.get(STRATA_HEADER), body, endpoint.secrets)


def _arrival(
    endpoint: Endpoint, headers: dict[str, str], body: bytes, body_sha256: str, parsed: Parsed | None
) -> Arrival:
    if parsed is None:  # unverified: what its headers claim, the body unread
        event = event_name(endpoint.scheme, headers, None)
        sender = sender_delivery_id(endpoint.scheme, headers, None)
        key = dedupe_key(sender, body_sha256)
    else:
        event, sender, key = parsed.event, parsed.sender_delivery_id, parsed.dedupe_key
    return Arrival(
        tenant_id=endpoint.tenant_id,
        endpoint_id=endpoint.endpoint_id,
        content_type=_text(headers.get("content-type", ""), 200),
        body_bytes=len(body),
        body_sha256=body_sha256,
        event=event,
        sender_delivery_id=sender,
        dedupe_key=key,
    )


def _bucket_key(endpoint: Endpoint, kind: str) -> str:
    return f"strata:rl:{endpoint.tenant_id}:{kind}:{endpoint.endpoint_id}"


async def _record_rejection(endpoint: Endpoint, arrival: Arrival, reason: str) -> None:
    """Record an unverified delivery, within the endpoint's own allowance for them (a flood of forged requests
    costs a Redis round trip each, and leaves the newest few records)."""
    from strata import ratelimit

    settings = inbound_settings()
    bucket = ratelimit.Bucket(
        _bucket_key(endpoint, "hook-rejected"), settings.inbound_rejected_rps, settings.inbound_rejected_burst
    )
    try:
        decision = await ratelimit.charge_buckets([bucket])
    except Exception as exc:  # no allowance to check: the refusal goes out unrecorded
        logger.warning("rejected delivery not recorded", extra={"error": str(exc)[:300]})
        return
    if decision.allowed:
        await deliveries.record_rejected(arrival, reason, settings.inbound_rejected_kept)


async def _admit(endpoint: Endpoint) -> None:
    """Charge a verified delivery to the endpoint's rate limit (429 when it is spent)."""
    from strata import ratelimit

    settings = inbound_settings()
    bucket = ratelimit.Bucket(_bucket_key(endpoint, "hook"), settings.inbound_rps, settings.inbound_burst)
    decision = await ratelimit.charge_or_policy([bucket])
    if decision is not None and not decision.allowed:
        raise TooManyRequestsError(
            "this endpoint is over its rate limit; retry after the Retry-After delay", headers=decision.headers()
        )


async def receive(endpoint_id: UUID, headers: dict[str, str], body: bytes, correlation_id: str) -> HookAnswer:
    """Handle one delivery to an endpoint (see the module's docstring); raises ProblemError for every refusal."""
    settings = inbound_settings()
    if len(body) > settings.inbound_max_body_bytes:
        raise PayloadTooLargeError(f"a delivery's body is at most {settings.inbound_max_body_bytes} bytes")
    endpoint = await endpoints.find(endpoint_id)
    if endpoint is None:
        raise UnauthorizedError(NOT_SIGNED)
    body_sha256 = hashlib.sha256(body).hexdigest()
    no_retry = SLACK_NO_RETRY if endpoint.scheme == "slack" else {}
    try:
        verify(endpoint, headers, body)
    except SignatureError as exc:
        await _record_rejection(endpoint, _arrival(endpoint, headers, body, body_sha256, None), str(exc))
        logger.info("inbound delivery rejected", extra={"endpoint_id": str(endpoint_id), "reason": str(exc)})
        raise UnauthorizedError(NOT_SIGNED) from None
    await _admit(endpoint)
    parsed = parse(endpoint.scheme, headers, body, body_sha256)
    claim = await deliveries.claim(_arrival(endpoint, headers, body, body_sha256, parsed), settings.inbound_claim_s)
    if claim.state == "accepted":
        return _shaped(endpoint, parsed, _accepted(claim, claim.goal_id, duplicate=True))
    if claim.state == "busy":
        raise ConflictError(
            "this delivery is being processed by an earlier attempt; retry shortly",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
            delivery_id=str(claim.delivery_id),
        )
    answer = await _process(endpoint, headers, parsed, claim, correlation_id, no_retry)
    logger.info(
        "inbound delivery",
        extra={"endpoint_id": str(endpoint_id), "delivery_id": str(claim.delivery_id), "status": answer.status},
    )
    return _shaped(endpoint, parsed, answer)


def _accepted(claim: Claim, goal_id: UUID | None, duplicate: bool) -> HookAnswer:
    body = {
        "delivery_id": str(claim.delivery_id),
        "outcome": "accepted",
        "goal_id": str(goal_id),
        "duplicate": duplicate,
    }
    return HookAnswer(202, body)


def _ignored(claim: Claim, reason: str) -> HookAnswer:
    return HookAnswer(200, {"delivery_id": str(claim.delivery_id), "outcome": "ignored", "reason": reason})


def _handshake(endpoint: Endpoint, parsed: Parsed) -> tuple[str, dict[str, Any] | None] | None:
    """The reason and answer body of a sender's handshake (no goal), or None for a delivery."""
    payload = parsed.payload if isinstance(parsed.payload, dict) else {}
    if endpoint.scheme == "github" and parsed.event == "ping":
        return "GitHub ping: the webhook is set up", None
    if endpoint.scheme == "slack" and payload.get("type") == "url_verification":
        challenge = payload.get("challenge")
        if isinstance(challenge, str) and 0 < len(challenge) <= 500:
            return "Slack url_verification: the challenge was answered", {"challenge": challenge}
    return None


async def _process(
    endpoint: Endpoint,
    headers: dict[str, str],
    parsed: Parsed,
    claim: Claim,
    correlation_id: str,
    no_retry: dict[str, str],
) -> HookAnswer:
    """Judge a claimed delivery and settle its record; answers, or raises the refusal."""
    tenant_id, delivery_id = endpoint.tenant_id, claim.delivery_id

    async def refuse(error: ProblemError, outcome: deliveries.Outcome = "failed") -> ProblemError:
        await deliveries.settle(tenant_id, delivery_id, outcome, error.detail)
        error.extra.setdefault("delivery_id", str(delivery_id))
        return error

    if not endpoint.enabled:
        raise await refuse(ForbiddenError("this endpoint is disabled", headers=no_retry), "rejected")
    if parsed.problem is not None:
        parsed.problem.headers.update(no_retry)
        raise await refuse(parsed.problem)
    handshake = _handshake(endpoint, parsed)
    if handshake is not None:
        reason, reply = handshake
        await deliveries.settle(tenant_id, delivery_id, "ignored", reason)
        return HookAnswer(200, reply) if reply is not None else _ignored(claim, reason)
    delivery = Delivery(
        payload=parsed.payload,
        event=parsed.event,
        delivery=parsed.sender_delivery_id or "",
        endpoint=endpoint.name,
        scheme=endpoint.scheme,
        headers={k: v for k, v in headers.items() if k not in HIDDEN_HEADERS},
    )
    ignored = why_ignored(endpoint.filter, delivery)
    if ignored is not None:
        await deliveries.settle(tenant_id, delivery_id, "ignored", ignored)
        return _ignored(claim, ignored)
    try:
        text = render(compile_template(endpoint.mapping.text), delivery)
    except RenderError as exc:
        raise await refuse(
            MappingFailedError(f"the payload does not fit the endpoint's mapping: {exc}", headers=no_retry)
        ) from None
    goal = endpoint.mapping.goal_body(text, on_behalf_of=submitter(endpoint.endpoint_id))
    goal_id = await _submit(endpoint, claim, parsed, goal, correlation_id, no_retry)
    await deliveries.settle(tenant_id, delivery_id, "accepted", goal_id=goal_id, goal_text=text)
    return _accepted(claim, goal_id, duplicate=False)


def submitter(endpoint_id: UUID) -> str:
    """Whom an endpoint's goals are submitted for, the principal policies judge them as (a service principal of
    its own, so a Cedar policy can single out what webhooks start)."""
    return f"service:inbound-webhook/{endpoint_id}"


def preview(
    endpoint_name: str,
    endpoint_id: UUID,
    scheme: str,
    mapping: GoalMapping,
    conditions: Sequence[FilterCondition],
    payload: Any,
    event: str,
    headers: dict[str, str],
    sender_id: str,
) -> dict[str, Any]:
    """What a delivery of `payload` would become, nothing recorded or submitted: ignored (and why), failed (the
    field the mapping misses), or accepted with the goal it would submit."""
    delivery = Delivery(
        payload=payload,
        event=event,
        delivery=sender_id,
        endpoint=endpoint_name,
        scheme=scheme,
        headers={k.lower(): v for k, v in headers.items() if k.lower() not in HIDDEN_HEADERS},
    )
    ignored = why_ignored(conditions, delivery)
    if ignored is not None:
        return {"outcome": "ignored", "reason": ignored, "goal": None}
    try:
        text = render(compile_template(mapping.text), delivery)
    except RenderError as exc:
        return {"outcome": "failed", "reason": str(exc), "goal": None}
    return {"outcome": "accepted", "reason": None, "goal": mapping.goal_body(text, submitter(endpoint_id))}


def idempotency_key(endpoint_id: UUID, dedupe: str, goal: dict[str, Any]) -> str:
    """The Idempotency-Key of a delivery's goal submission: the same delivery mapped to the same goal is one goal,
    even when the first submission's answer was lost; a delivery resent after its mapping changed is a new one."""
    canonical = json.dumps(goal, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{dedupe}\n{canonical}".encode()).hexdigest()
    return f"inbound-webhook:{endpoint_id}:{digest}"


def _problem_detail(response: peers.PeerResponse) -> str:
    try:
        detail = response.json().get("detail", "")
    except (ValueError, AttributeError):
        detail = response.text
    return clean_text(str(detail), 1000)


async def _submit(
    endpoint: Endpoint,
    claim: Claim,
    parsed: Parsed,
    goal: dict[str, Any],
    correlation_id: str,
    no_retry: dict[str, str],
) -> UUID:
    """Submit the goal to L05 as the endpoint's tenant; the goal's id, or the refusal raised (503 when planning is
    unavailable, so the sender retries)."""
    tenant_id, delivery_id = endpoint.tenant_id, claim.delivery_id
    try:
        response = await peers.call(
            "POST",
            "/v1/goals",
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            json=goal,
            headers={"Idempotency-Key": idempotency_key(endpoint.endpoint_id, parsed.dedupe_key, goal)},
        )
    except DependencyUnavailableError as exc:
        reason = f"planning (L05) is unreachable, so the sender should retry: {exc.detail}"
        await deliveries.settle(tenant_id, delivery_id, "failed", reason)
        raise DependencyUnavailableError(
            "planning is unavailable; retry the delivery shortly", delivery_id=str(delivery_id)
        ) from exc
    if response.status_code in (200, 201, 202):
        return UUID(str(response.json()["goal_id"]))
    detail = _problem_detail(response)
    reason = f"planning answered {response.status_code}: {detail}"
    await deliveries.settle(tenant_id, delivery_id, "failed", reason)
    # 409: planning still runs an earlier submission with this key (an attempt whose claim lapsed)
    if response.status_code in (409, 429) or response.status_code >= 500:
        raise DependencyUnavailableError(
            "planning is unavailable; retry the delivery shortly", delivery_id=str(delivery_id)
        )
    if response.status_code in (401, 403):  # the platform's own credential was refused: not the sender's doing
        raise BadGatewayError("planning refused the platform's credential", delivery_id=str(delivery_id))
    raise GoalRefusedError(
        f"planning refused the goal ({response.status_code}): {detail}", headers=no_retry, delivery_id=str(delivery_id)
    )


def _shaped(endpoint: Endpoint, parsed: Parsed, answer: HookAnswer) -> HookAnswer:
    """Slack's form deliveries want a 200: a slash command shows its body's `text` to the user who typed it; an
    interaction wants an empty body."""
    if endpoint.scheme != "slack" or parsed.media_type != FORM or answer.status >= 300:
        return answer
    if parsed.event != "slash_command":
        return HookAnswer(200, None, answer.headers)
    body = answer.body or {}
    if body.get("goal_id"):
        text = f"Submitted as goal {body['goal_id']}"
    else:
        text = f"Nothing to do: {body.get('reason', 'ignored')}"
    return HookAnswer(200, {"response_type": "ephemeral", "text": text, **body}, answer.headers)
