"""Event contracts: the envelope, the registry and every domain's events.

One module per producing layer; a consumer imports the models it handles from here, so a producer and its
consumers cannot disagree on a name or a field. Later layers add their events here, never elsewhere. The
domain modules load on first use (`EVENT_TYPES`, `event_model`, or importing one), not with the package.
"""

import importlib
from typing import TYPE_CHECKING, Any

from strata.events.envelope import (
    CONTRACT_MODULES,
    Event,
    UnknownEventError,
    event_model,
    load_contracts,
    parse_eventbridge,
)

if TYPE_CHECKING:  # at run time the full registry is handed out by __getattr__ below, after loading it
    EVENT_TYPES: dict[str, type[Event]]

__all__ = ["EVENT_TYPES", "Event", "UnknownEventError", "event_model", "load_contracts", "parse_eventbridge"]


def __getattr__(name: str) -> Any:
    if name == "EVENT_TYPES":
        return load_contracts()
    if name in CONTRACT_MODULES:
        return importlib.import_module(f"strata.events.{name}")
    raise AttributeError(f"module 'strata.events' has no attribute {name!r}")
