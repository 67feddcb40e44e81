"""Optimistic concurrency over HTTP: versions as ETags, `If-Match` checked on writes (412 when stale)."""

from __future__ import annotations

from fastapi import Request, Response

from strata.errors import BadRequestError, PreconditionFailedError


def etag(version: int) -> str:
    """The strong ETag of an entity version."""
    return f'"v{version}"'


def expected_version(request: Request) -> int | None:
    """The version `If-Match` names (None when the header is absent: the write is unconditional)."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/")
    if not (tag.startswith('"v') and tag.endswith('"') and tag[2:-1].isdigit()):
        raise BadRequestError(f"If-Match must be an ETag this API issued, like {etag(3)}; got {header!r}")
    return int(tag[2:-1])


def check_version(expected: int | None, current: int) -> None:
    """412 when the caller's version is not the current one."""
    if expected is not None and expected != current:
        raise PreconditionFailedError(
            f"the entity is at version {current}, not {expected}: read it again and retry",
            current_etag=etag(current),
        )


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)
