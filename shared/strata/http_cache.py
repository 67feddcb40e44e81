"""Conditional GET: a strong ETag computed from a representation's bytes, and 304 Not Modified when the caller's
If-None-Match names it (a poller pays for the body only when it changed)."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

# A tenant's data: no shared cache may keep it, and a client revalidates before every use.
PRIVATE_REVALIDATE = "private, no-cache"
# A conditional route's extra OpenAPI response.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the If-None-Match ETag is current"}
}


def content_etag(body: bytes) -> str:
    """The strong ETag of a representation: a hash of its bytes (equal bytes, equal tag)."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def none_match(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (or is `*`), compared weakly as RFC 9110 prescribes for it."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def conditional_json(
    request: Request, model: type[BaseModel], value: Any, cache_control: str = PRIVATE_REVALIDATE
) -> Response:
    """`value` as JSON shaped by `model` (as a route's response_model shapes it) with its ETag, or 304 without the
    body when If-None-Match names that ETag."""
    body = model.model_validate(value).model_dump_json().encode()
    headers = {"ETag": content_etag(body), "Cache-Control": cache_control}
    if none_match(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
