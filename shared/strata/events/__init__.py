"""Event contracts: the envelope, the registry and every domain's events (importing this fills the registry)."""

from strata.events import entities
from strata.events.envelope import EVENT_TYPES, Event, UnknownEventError, event_model, parse_eventbridge

__all__ = ["EVENT_TYPES", "Event", "UnknownEventError", "entities", "event_model", "parse_eventbridge"]
