"""CORS preflights. A preflight carries no credential, so it passes when any active tenant allows the origin;
the actual request then gets CORS headers only if the caller's own tenant allows it (see strata.web)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from strata.errors import BadRequestError, ForbiddenError
from strata_api_gateway import store

router = APIRouter(tags=["cors"])

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "if-match",
    "if-none-match",
    "x-correlation-id",
    "x-request-id",
)
ORIGINS_TTL_S = 60.0  # how long a known origin stays allowed after its tenant drops it
MISS_REFRESH_S = 5.0  # an origin not yet known is looked up again at most this often
_origins: tuple[float, set[str]] | None = None


async def origin_allowed(origin: str) -> bool:
    """Whether some active tenant allows `origin` (the set is cached per execution environment)."""
    global _origins
    age = time.monotonic() - _origins[0] if _origins else float("inf")
    known = _origins[1] if _origins else set()
    if age > ORIGINS_TTL_S or (origin not in known and "*" not in known and age > MISS_REFRESH_S):
        _origins = (time.monotonic(), await store.allowed_origins())
        known = _origins[1]
    return origin in known or "*" in known


@router.options("/{path:path}", include_in_schema=False, status_code=204)
async def preflight(path: str, request: Request) -> Response:
    """Answer a browser's CORS preflight for any route."""
    origin = request.headers.get("origin")
    method = request.headers.get("access-control-request-method")
    if not origin or not method:
        raise BadRequestError("a CORS preflight carries Origin and Access-Control-Request-Method")
    if not await origin_allowed(origin):
        raise ForbiddenError(f"no tenant allows the origin {origin!r}; add it with PATCH /v1/tenant")
    requested = [h.strip().lower() for h in request.headers.get("access-control-request-headers", "").split(",")]
    refused = [h for h in requested if h and h not in ALLOWED_HEADERS]
    if refused:
        raise ForbiddenError(f"headers not allowed: {', '.join(refused)}")
    return Response(
        status_code=204,
        headers={
            "access-control-allow-origin": origin,
            "access-control-allow-methods": ALLOWED_METHODS,
            "access-control-allow-headers": ", ".join(ALLOWED_HEADERS),
            "access-control-max-age": "600",
            "vary": "Origin",
        },
    )
