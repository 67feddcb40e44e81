"""Domain errors and their one mapping to RFC 9457 problem+json responses."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://strata.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemError(Exception):
    """An error that leaves the API as problem+json with a stable `type` and HTTP status."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers = headers or {}  # response headers it carries, e.g. Retry-After

    def to_problem(self, instance: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        return problem(self.status, self.slug, self.title, self.detail, instance, request_id, **self.extra)


class BadRequestError(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class UnauthorizedError(ProblemError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class ForbiddenError(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFoundError(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class ConflictError(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailedError(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLargeError(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class HeadersTooLargeError(ProblemError):
    status, slug, title = 431, "headers-too-large", "Request header fields too large"


class PaymentRequiredError(ProblemError):
    status, slug, title = 402, "budget-exceeded", "Budget exceeded"


class SuspendedError(ProblemError):
    """Refused by the kill switch: the tenant or the agent is suspended until the suspension is lifted."""

    status, slug, title = 423, "suspended", "Suspended"


class UnsupportedMediaTypeError(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class GoalRefusedError(ProblemError):
    """Planning (L05) refused the goal an inbound webhook's delivery mapped to: resending it cannot help."""

    status, slug, title = 422, "goal-refused", "Goal refused"


class MappingFailedError(ProblemError):
    """An inbound webhook's payload lacks a field the endpoint's mapping needs."""

    status, slug, title = 422, "mapping-failed", "Mapping failed"


class InvalidInputError(ProblemError):
    status, slug, title = 422, "validation", "Invalid input"


class TooManyRequestsError(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class BadGatewayError(ProblemError):
    status, slug, title = 502, "upstream-failed", "Upstream failed"


class DependencyUnavailableError(ProblemError):
    status, slug, title = 503, "unavailable", "Dependency unavailable"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a problem+json body."""
    body: dict[str, Any] = {**extra, "type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    return body
