"""Which events a webhook takes: its event types (checked against the event registry) and its filters on the event's
fields; and the body a delivery carries.

Filters are an object of field path -> wanted value(s), all of which must hold:

    {"goal_id": "5f0c...", "status": ["failed", "cancelled"], "output.kind": "report"}

A path names a field of the event (dots go into nested objects). A scalar wants that value, a list any of its values
(an "in"); JSON types are compared strictly (1 is not "1", true is not 1). Where the event's field is itself a list,
the filter holds if any element matches, as in EventBridge patterns. An event without the field does not match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from strata.events.envelope import Event, load_contracts

ANY_EVENT = "*"
PING_EVENT_TYPE = "WebhookPing"
PING_SOURCE = "strata.integration"
# Steps of the platform's own flow and metering, not things that happened to a tenant's resources: high volume and
# meaningless outside the platform (read usage through /v1/usage). The template's webhook event rule leaves the same
# types out (a unit test holds the two together).
INTERNAL_EVENT_TYPES = frozenset({"TaskReady", "TaskContinued", "EvalRunRequested", "ModelUsageRecorded"})
MAX_FILTERS = 20
MAX_FILTER_VALUES = 50
MAX_FILTER_STRING = 500
MAX_PATH_DEPTH = 5
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z0-9_]{1,64}){0,4}")  # at most MAX_PATH_DEPTH names

FilterValue = str | int | float | bool | None


def subscribable_event_types() -> list[str]:
    """Every registered event type a webhook may take, sorted."""
    return sorted(t for t in load_contracts() if t not in INTERNAL_EVENT_TYPES)


def check_event_types(event_types: list[str]) -> list[str]:
    """The event types without duplicates, in the order given; ValueError naming what is wrong. `*` (every
    subscribable type, now and later) stands alone."""
    unique = list(dict.fromkeys(event_types))
    if not unique:
        raise ValueError("event_types needs at least one event type (or '*')")
    if ANY_EVENT in unique:
        if len(unique) > 1:
            raise ValueError("'*' takes every event type; list it alone")
        return unique
    known = set(subscribable_event_types())
    unknown = [t for t in unique if t not in known]
    if unknown:
        internal = [t for t in unknown if t in INTERNAL_EVENT_TYPES]
        if internal:
            raise ValueError(f"{', '.join(internal)}: internal to the platform, not subscribable")
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; subscribable: {', '.join(sorted(known))}")
    return unique


def check_filters(filters: Mapping[str, Any], event_types: list[str]) -> dict[str, Any]:
    """The filters as stored; ValueError naming the first problem. Each path's first field must be a field of every
    subscribed type (of some subscribable type, for '*'): a filter that can never match is a mistake."""
    if not isinstance(filters, Mapping):
        raise ValueError("filters must be an object of field path -> value or list of values")
    if len(filters) > MAX_FILTERS:
        raise ValueError(f"at most {MAX_FILTERS} filters")
    registry = load_contracts()
    models = [registry[t] for t in event_types if t in registry]
    anywhere = {name for t in subscribable_event_types() for name in registry[t].model_fields}
    for path, wanted in filters.items():
        if not isinstance(path, str) or not _PATH.fullmatch(path):
            raise ValueError(f"filter {path!r}: a path is field names joined by dots (at most {MAX_PATH_DEPTH})")
        field = path.split(".")[0]
        if event_types == [ANY_EVENT]:
            if field not in anywhere:
                raise ValueError(f"filter {path!r}: no subscribable event has a field {field!r}")
        else:
            lacking = [m.DETAIL_TYPE for m in models if field not in m.model_fields]
            if lacking:
                raise ValueError(f"filter {path!r}: {', '.join(lacking)} has no field {field!r}")
        values = wanted if isinstance(wanted, list) else [wanted]
        if isinstance(wanted, list) and not 1 <= len(wanted) <= MAX_FILTER_VALUES:
            raise ValueError(f"filter {path!r}: a list of 1 to {MAX_FILTER_VALUES} values")
        for value in values:
            if value is not None and not isinstance(value, str | int | float | bool):
                raise ValueError(f"filter {path!r}: values are strings, numbers, booleans or null")
            if isinstance(value, str) and len(value) > MAX_FILTER_STRING:
                raise ValueError(f"filter {path!r}: a string value is at most {MAX_FILTER_STRING} characters")
    return dict(filters)


def _same(actual: Any, wanted: Any) -> bool:
    """JSON equality: booleans are not numbers, numbers compare by value (1 == 1.0)."""
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual == wanted
    if isinstance(actual, int | float) and isinstance(wanted, int | float):
        return actual == wanted
    return type(actual) is type(wanted) and actual == wanted


_MISSING = object()


def _lookup(detail: Mapping[str, Any], path: str) -> Any:
    found: Any = detail
    for name in path.split("."):
        if not isinstance(found, Mapping) or name not in found:
            return _MISSING
        found = found[name]
    return found


def matches(filters: Mapping[str, Any], detail: Mapping[str, Any]) -> bool:
    """Whether an event's detail (its JSON form) passes every filter."""
    for path, wanted in filters.items():
        actual = _lookup(detail, path)
        if actual is _MISSING:
            return False
        candidates: Iterable[Any] = actual if isinstance(actual, list) else [actual]
        options = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same(a, w) for a in candidates for w in options):
            return False
    return True


def event_payload(event: Event) -> dict[str, Any]:
    """A delivery's body: the event's id, type and source, and its detail exactly as the event's model has it (so a
    receiver can parse it with `strata.events.event_model(type).from_detail(detail)`)."""
    return {
        "id": str(event.event_id),
        "type": event.DETAIL_TYPE,
        "source": event.SOURCE,
        "occurred_at": event.occurred_at.isoformat(),
        "tenant_id": str(event.tenant_id),
        "detail": event.model_dump(mode="json"),
    }


def ping_payload(tenant_id: UUID, event_id: UUID, webhook_id: UUID, url: str, event_types: list[str]) -> dict[str, Any]:
    """A test delivery's body: shaped like any event's, of type WebhookPing."""
    now = datetime.now(UTC).isoformat()
    return {
        "id": str(event_id),
        "type": PING_EVENT_TYPE,
        "source": PING_SOURCE,
        "occurred_at": now,
        "tenant_id": str(tenant_id),
        "detail": {
            "event_id": str(event_id),
            "tenant_id": str(tenant_id),
            "occurred_at": now,
            "webhook_id": str(webhook_id),
            "url": url,
            "event_types": event_types,
            "message": "a test delivery: your endpoint is reachable and can verify Strata's signature",
        },
    }
