"""`Idempotency-Key` on POSTs: the first answer is kept for a day and replayed for the same key and body; the
same key with another body is 422; a duplicate arriving while the first still runs is 409 (as Stripe does)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from aws_lambda_powertools import Logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strata.auth import Principal
from strata.errors import (
    PROBLEM_MEDIA_TYPE,
    BadRequestError,
    ConflictError,
    DependencyUnavailableError,
    InvalidInputError,
    ProblemError,
    UnauthorizedError,
)

logger = Logger(child=True)

HEADER = "idempotency-key"
TTL_S = 86_400
IN_PROGRESS_TTL_S = 300  # a request that died mid-way frees its key after this


def _principal(scope: Scope) -> Principal | None:
    event = scope.get("aws.event") or {}
    context = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda")
    if not isinstance(context, dict):
        return None
    try:
        return Principal.from_context(context)
    except UnauthorizedError:
        return None


async def _problem(scope: Scope, send: Send, error: ProblemError) -> None:
    body = json.dumps(error.to_problem(scope.get("path"))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    """Pure ASGI middleware; requests without the header, or not POST, pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(HEADER.encode())
        principal = _principal(scope) if raw is not None else None
        if raw is None or principal is None:  # no key, or no caller (the route answers 401)
            await self.app(scope, receive, send)
            return
        key = raw.decode("latin-1")
        if not 1 <= len(key) <= 255 or not key.isprintable():
            await _problem(scope, send, BadRequestError("Idempotency-Key must be 1 to 255 printable characters"))
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        fingerprint = hashlib.sha256(b"\n".join([scope["path"].encode(), scope.get("query_string", b""), body]))
        record_key = (
            "strata:idem:"
            + hashlib.sha256(f"{principal.tenant_id}|{principal.principal_id}|{key}".encode()).hexdigest()
        )
        try:
            await self._handle(scope, send, messages, record_key, fingerprint.hexdigest())
        except DependencyUnavailableError as exc:
            await _problem(scope, send, exc)

    async def _handle(
        self, scope: Scope, send: Send, messages: list[Message], record_key: str, fingerprint: str
    ) -> None:
        from strata.cache import get_redis

        redis = get_redis()
        try:
            claimed = await redis.set(
                record_key,
                json.dumps({"state": "in_progress", "fingerprint": fingerprint}),
                nx=True,
                ex=IN_PROGRESS_TTL_S,
            )
            existing: str | None = None if claimed else str(await redis.get(record_key) or "") or None
        except Exception as exc:  # without the record, a retry could create twice: refuse instead
            raise DependencyUnavailableError("idempotency records are unavailable; retry shortly") from exc
        if not claimed:
            await self._answer_duplicate(scope, send, existing, fingerprint)
            return

        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def replayable_receive() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(status=message["status"], headers=message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replayable_receive, capture)
        finally:
            await self._record(record_key, fingerprint, started, b"".join(chunks))

    async def _record(self, record_key: str, fingerprint: str, started: dict[str, Any], body: bytes) -> None:
        from strata.cache import get_redis

        try:
            if not started or started["status"] >= 500:  # a failure is not an answer: the key may be retried
                await get_redis().delete(record_key)
                return
            headers = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in started["headers"]
                if k.lower() not in (b"x-request-id", b"server-timing", b"content-length")
            ]
            record = {
                "state": "done",
                "fingerprint": fingerprint,
                "status": started["status"],
                "headers": headers,
                "body": base64.b64encode(body).decode(),
            }
            await get_redis().set(record_key, json.dumps(record), ex=TTL_S)
        except Exception as exc:  # the answer went out; a retry after this will be treated as new after 5 min
            logger.error("idempotency record not saved", extra={"error": str(exc)[:300]})

    async def _answer_duplicate(self, scope: Scope, send: Send, existing: str | None, fingerprint: str) -> None:
        record: dict[str, Any] = (
            json.loads(existing) if existing else {"state": "in_progress", "fingerprint": fingerprint}
        )
        if record["fingerprint"] != fingerprint:
            await _problem(
                scope,
                send,
                InvalidInputError(
                    "this Idempotency-Key was used with a different request; use a new key for a new request"
                ),
            )
            return
        if record["state"] != "done":
            await _problem(scope, send, ConflictError("a request with this Idempotency-Key is still being processed"))
            return
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record["headers"]]
        await send(
            {
                "type": "http.response.start",
                "status": record["status"],
                "headers": [*headers, (b"idempotent-replayed", b"true")],
            }
        )
        await send({"type": "http.response.body", "body": base64.b64decode(record["body"])})
