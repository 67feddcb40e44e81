"""Event contracts: the envelope, the registry and every domain's events (importing this fills the registry).

One module per producing layer; a consumer imports the models it handles from here, so a producer and its
consumers cannot disagree on a name or a field. Later layers add their events here, never elsewhere.
"""

from strata.events import entities, evaluation, models, planning, runtime, supervision, tools
from strata.events.envelope import EVENT_TYPES, Event, UnknownEventError, event_model, parse_eventbridge

__all__ = [
    "EVENT_TYPES",
    "Event",
    "UnknownEventError",
    "entities",
    "evaluation",
    "event_model",
    "models",
    "parse_eventbridge",
    "planning",
    "runtime",
    "supervision",
    "tools",
]
