"""The app factory every function uses: health, problem+json errors, request ids, body limits, scopes."""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import Token
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strata import __version__, spool
from strata import timing as timings
from strata.auth import Principal
from strata.config import get_settings
from strata.errors import (
    PROBLEM_MEDIA_TYPE,
    BadRequestError,
    DependencyUnavailableError,
    HeadersTooLargeError,
    PayloadTooLargeError,
    ProblemError,
    TooManyRequestsError,
    UnauthorizedError,
    problem,
)
from strata.idempotency import IdempotencyMiddleware
from strata.scopes import SCOPES, TENANT_PURGE

if TYPE_CHECKING:
    from strata.ratelimit import Bucket, Decision, DeferredCharge
    from strata.tenant_data import TenantTables

logger = Logger(child=True)

# FastAPI checks every route parameter against pydantic.v1's BaseModel, importing pydantic.v1 to do it: ~65 ms of
# every function's cold start. Strata has no v1 models, so inside a Lambda execution environment (where nothing
# else wants pydantic.v1) the import fails fast and FastAPI concludes, rightly, that no parameter is a v1 model.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and "pydantic.v1" not in sys.modules:
    sys.modules["pydantic.v1"] = None  # type: ignore[assignment]

ReadinessCheck = Callable[[], Awaitable[None]]


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem_response(request: Request, error: ProblemError) -> ProblemResponse:
    headers = {"Retry-After": "1", **error.headers} if error.status == 503 else error.headers
    return ProblemResponse(
        error.to_problem(request.url.path, _request_id(request)), status_code=error.status, headers=headers
    )


async def _on_problem(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(request, exc)


async def _on_validation(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    body = problem(
        422,
        "validation",
        "Invalid input",
        "the request did not validate",
        request.url.path,
        _request_id(request),
        errors=fields,
    )
    return ProblemResponse(body, status_code=422)


_HTTP_SLUGS = {404: ("not-found", "Not found"), 405: ("method-not-allowed", "Method not allowed")}


async def _on_http(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    body = problem(exc.status_code, slug, title, str(exc.detail), request.url.path, _request_id(request))
    return ProblemResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    logger.exception("unhandled error", extra={"path": request.url.path})
    body = problem(
        500,
        "internal",
        "Internal error",
        "the server failed; the request id identifies it in the logs",
        request.url.path,
        _request_id(request),
    )
    return ProblemResponse(body, status_code=500)


# Response headers a browser script may read (CORS hides all but a few by default).
CORS_EXPOSED_HEADERS = (
    "etag, location, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, idempotent-replayed, "
    "x-request-id, x-correlation-id, server-timing"
)
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= 1:
        return body.count(b"[") + body.count(b"{")
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(body):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


def _authorizer_context(event: dict[str, Any]) -> dict[str, Any] | None:
    context = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda")
    return context if isinstance(context, dict) else None


def cors_headers(origin: str | None, allowed: list[str] | tuple[str, ...]) -> dict[str, str]:
    """CORS response headers when `origin` is one the tenant allows (or it allows any), else none."""
    if not origin or not (origin in allowed or "*" in allowed):
        return {}
    return {
        "access-control-allow-origin": origin,
        "access-control-expose-headers": CORS_EXPOSED_HEADERS,
        "vary": "Origin",
    }


class RequestContextMiddleware:
    """Pure ASGI middleware, in order: request/correlation ids; header size, body size and JSON depth limits; rate
    limits; CORS for the tenant's origins; timing; and one request-log entry per authenticated request."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_header_bytes: int,
        max_json_depth: int,
        self_limiting_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_json_depth = max_json_depth
        self.self_limiting_paths = self_limiting_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        event = scope.get("aws.event") or {}
        request_id = (
            headers.get("x-request-id") or event.get("requestContext", {}).get("requestId") or str(uuid.uuid4())
        )
        correlation_id = headers.get("x-correlation-id") or request_id
        scope.setdefault("state", {}).update(request_id=request_id, correlation_id=correlation_id)
        logger.append_keys(request_id=request_id, correlation_id=correlation_id)
        started = time.perf_counter()
        context = _authorizer_context(event)
        allowed_origins = str((context or {}).get("cors_origins") or "").split()
        base_headers = {
            "x-request-id": request_id,
            "x-correlation-id": correlation_id,
            **cors_headers(headers.get("origin"), allowed_origins),
        }

        async def refuse(error: ProblemError, extra: Mapping[str, str] | None = None) -> None:
            response = ProblemResponse(
                error.to_problem(scope.get("path"), request_id),
                status_code=error.status,
                headers={**base_headers, **(extra or {})},
            )
            await response(scope, receive, send)

        header_bytes = sum(len(k) + len(v) for k, v in scope["headers"])
        if header_bytes > self.max_header_bytes:
            await refuse(HeadersTooLargeError(f"the request's headers exceed {self.max_header_bytes} bytes"))
            return
        length = headers.get("content-length")
        is_json = "json" in headers.get("content-type", "")
        body: bytes | None = None
        if is_json or not (length and length.isdigit()):  # read it: to check its depth, or to count its size
            body, receive = await _buffer_body(receive, self.max_body_bytes)
            length = str(len(body))
        if int(length) > self.max_body_bytes:
            await refuse(PayloadTooLargeError(f"the body exceeds {self.max_body_bytes} bytes"))
            return
        if body and is_json and json_depth(body) > self.max_json_depth:
            await refuse(BadRequestError(f"the JSON body nests deeper than {self.max_json_depth} levels"))
            return
        timings.start()
        limited = charge = None
        if scope["path"] in self.self_limiting_paths:  # the route charges them in its own first Redis round trip
            charge = _deferred_charge(context)
        else:
            try:
                limited = await _rate_limit(context)
            except DependencyUnavailableError as unavailable:
                await refuse(unavailable, {"Retry-After": "1"})
                return
            if limited is not None and not limited.allowed:
                from strata.ratelimit import REQUEST_LIMITED

                await refuse(TooManyRequestsError(REQUEST_LIMITED), limited.headers())
                return
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in base_headers.items()]
        if limited is not None:
            extra += _header_pairs(limited)
        outcome = {"status": 500, "bytes_out": 0}

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                timing = (b"server-timing", timings.header((time.perf_counter() - started) * 1000).encode())
                headers = [*message.get("headers", []), *extra, timing]
                if charge is not None and charge.decision is not None and charge.decision.allowed:
                    headers += _header_pairs(charge.decision)  # (a refusal carries its own)
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                outcome["bytes_out"] += len(message.get("body", b""))
            await send(message)

        # what the request spools (its request-log entry, metered model usage) leaves in one round trip at the end
        batch, token = spool.begin()
        deferred = _defer(charge)
        try:
            try:
                await self.app(scope, receive, send_with_ids)
            finally:
                if context is not None and context.get("tenant_id") and not _erasing(context):
                    await _log_request(scope, event, context, outcome, int(length), started)
        finally:
            if deferred is not None:
                await _undefer(charge, deferred)
            await spool.end(batch, token)


def _erasing(context: dict[str, Any]) -> bool:
    """A call of the tenant-deletion saga: it leaves no record of the tenant it erases."""
    return TENANT_PURGE in str(context.get("scopes", "")).split()


async def _log_request(
    scope: Scope, event: dict[str, Any], context: dict[str, Any], outcome: dict[str, int], bytes_in: int, started: float
) -> None:
    from strata import requestlog

    request_context = event.get("requestContext") or {}
    method = scope["method"]
    entry = requestlog.RequestRecord(
        request_id=str(request_context.get("requestId") or uuid.uuid4()),
        tenant_id=str(context["tenant_id"]),
        principal_id=str(context.get("principal_id", "")),
        route=str(event.get("routeKey") or f"{method} {scope['path']}"),
        method=method,
        path=scope["path"][:500],
        status=outcome["status"],
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        bytes_in=bytes_in,
        bytes_out=outcome["bytes_out"],
        at=requestlog.now_iso(),
    )
    await requestlog.record(entry)


def _request_buckets(context: dict[str, Any] | None) -> list[Bucket] | None:
    """The key's and tenant's buckets an authenticated request is charged to; None for public routes and service
    calls (and a context that names no valid caller: the route's own check answers 401)."""
    if context is None or context.get("kind") == "service":
        return None
    try:
        principal = Principal.from_context(context)
    except UnauthorizedError:
        return None
    from strata import ratelimit

    tier = ratelimit.tier(principal.tier)
    return ratelimit.request_buckets(str(principal.tenant_id), principal.principal_id, tier)


async def _rate_limit(context: dict[str, Any] | None) -> Decision | None:
    """Charge an authenticated request to its buckets; None for public routes, service calls, and (when
    configured to fail open) an unreachable Redis."""
    buckets = _request_buckets(context)
    if buckets is None:
        return None
    from strata import ratelimit

    return await ratelimit.charge_or_policy(buckets)


def _deferred_charge(context: dict[str, Any] | None) -> DeferredCharge | None:
    buckets = _request_buckets(context)
    if buckets is None:
        return None
    from strata import ratelimit

    return ratelimit.DeferredCharge(buckets)


def _defer(charge: DeferredCharge | None) -> Token[DeferredCharge | None] | None:
    """Hand the request's charge to the route (None: nothing deferred)."""
    if charge is None:
        return None
    from strata import ratelimit

    return ratelimit.defer(charge)


async def _undefer(charge: DeferredCharge | None, token: Token[DeferredCharge | None]) -> None:
    """Take the charge back; if the route never decided it (it failed first), charge it now."""
    from strata import ratelimit

    ratelimit.undefer(token)
    if charge is not None and not charge.decided:
        try:
            await ratelimit.charge_buckets(charge.buckets)
        except Exception as exc:  # the request is answered already; only its charge is lost
            logger.warning("rate limiter unavailable", extra={"error": str(exc)[:300]})


def _header_pairs(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]


async def _buffer_body(receive: Receive, limit: int) -> tuple[bytes, Receive]:
    """Read the body (stopping past `limit`) and return it and a receive that replays it."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body") or size > limit:
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return b"".join(m.get("body", b"") for m in messages), replay


def current_principal(request: Request) -> Principal:
    """The caller, as the L09 authorizer described it in the API Gateway request context (read once a request)."""
    state = request.scope.setdefault("state", {})
    principal = state.get("principal")
    if isinstance(principal, Principal):
        return principal
    context = _authorizer_context(request.scope.get("aws.event") or {})
    if context is None:
        raise UnauthorizedError("the request reached the function without an authorizer context")
    state["principal"] = principal = Principal.from_context(context)
    return principal


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that admits only callers holding `scope` (403 problem+json otherwise)."""
    if scope not in SCOPES:
        raise ValueError(f"{scope!r} is not in strata.scopes.SCOPES: add it there (with what it allows) first")

    async def dependency(request: Request) -> Principal:  # async: FastAPI runs a plain def in a thread pool
        principal = current_principal(request)
        principal.require(scope)
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


async def _postgres_ready() -> None:
    from strata import db

    await db.ping()


async def _redis_ready() -> None:
    from strata import cache

    await cache.ping()


async def _event_bus_ready() -> None:
    from strata.events import bus

    await bus.ping()


def default_readiness() -> dict[str, ReadinessCheck]:
    """Postgres, Redis and the event bus; their clients are imported on the first probe, not at cold start."""
    return {"postgres": _postgres_ready, "redis": _redis_ready, "event_bus": _event_bus_ready}


def health_router(layer: str, checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(prefix=f"/health/{layer}", tags=["health"])

    @router.get("/live", summary=f"Liveness of {layer}")
    async def live() -> dict[str, str]:
        """The function is loaded and answering."""
        return {"status": "ok", "layer": layer, "version": __version__}

    @router.get("/ready", summary=f"Readiness of {layer}", response_model=None)
    async def ready() -> JSONResponse:
        """Every dependency answered a real round trip."""
        results: dict[str, dict[str, Any]] = {}
        for name, check in checks.items():
            started = time.perf_counter()
            try:
                await check()
                results[name] = {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
            except Exception as exc:  # a readiness probe reports failures, it does not raise them
                # the route is public: the kind of failure only; the detail (hosts, users) goes to the log
                logger.warning("dependency not ready", extra={"dependency": name, "error": str(exc)[:500]})
                results[name] = {"status": "error", "error": type(exc).__name__}
        healthy = all(r["status"] == "ok" for r in results.values())
        body = {
            "status": "ok" if healthy else "unavailable",
            "layer": layer,
            "version": __version__,
            "dependencies": results,
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    return router


def create_service_app(
    *,
    layer: str,
    title: str,
    routers: Iterable[APIRouter],
    readiness: Mapping[str, ReadinessCheck] | None = None,
    description: str = "",
    self_limiting_paths: Iterable[str] = (),
    tenant_tables: TenantTables | None = None,
) -> FastAPI:
    """Build a layer's FastAPI app; nothing touches the network until a request needs it. On `self_limiting_paths`
    the routes charge the caller's rate limits themselves (strata.ratelimit.deferred), with their own first Redis
    round trip, instead of the middleware spending one on it. `tenant_tables` names what the layer holds for a
    tenant, for the tenant-deletion saga's routes (strata.tenant_data)."""
    settings = get_settings()
    logger.append_keys(layer=layer)
    app = FastAPI(
        title=title,
        description=description,
        version=__version__,
        openapi_url=None,  # the public document is the aggregated one L09 serves at /v1/openapi.json
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(health_router(layer, readiness if readiness is not None else default_readiness()))
    for router in routers:
        app.include_router(router)
    if tenant_tables is not None:
        from strata.tenant_data import tenant_data_router

        app.include_router(tenant_data_router(layer, tenant_tables))
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(IdempotencyMiddleware)  # inner: runs after the request id, body limit and rate limit
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_json_depth=settings.max_json_depth,
        self_limiting_paths=frozenset(self_limiting_paths),
    )
    return app
