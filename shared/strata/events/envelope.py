"""The event envelope every Strata event shares, and the registry of detail types."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from strata.errors import BadRequestError

EVENT_TYPES: dict[str, type[Event]] = {}


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Base of every event: subclasses set DETAIL_TYPE (past-tense PascalCase) and SOURCE (`strata.<layer>`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    DETAIL_TYPE: ClassVar[str]
    SOURCE: ClassVar[str]
    AGGREGATE: ClassVar[str]  # the field naming the entity this event is about (e.g. "run_id")
    # An observation (that something happened) rather than a step of the flow that another function waits on: its
    # publishing may be gathered with others for a moment (strata.events.outbox.unit_of_work(publish_soon=True)).
    OBSERVATION: ClassVar[bool] = False

    event_id: UUID = Field(default_factory=uuid4)
    tenant_id: UUID
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: str | None = Field(default=None, max_length=128)
    occurred_at: datetime = Field(default_factory=_now)
    schema_version: int = 1  # a subclass that changes its contract overrides this default

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        detail_type = cls.__dict__.get("DETAIL_TYPE")
        if detail_type:
            if detail_type in EVENT_TYPES and EVENT_TYPES[detail_type] is not cls:
                raise TypeError(f"event detail type {detail_type!r} is registered twice")
            if getattr(cls, "AGGREGATE", None) not in cls.model_fields:
                raise TypeError(f"{detail_type}.AGGREGATE must name one of its fields")
            EVENT_TYPES[detail_type] = cls

    @property
    def aggregate(self) -> tuple[str, str]:
        """(type, id) of the entity this event is about, e.g. ("run", "5f0c...")."""
        return self.AGGREGATE.removesuffix("_id"), str(getattr(self, self.AGGREGATE))

    def detail_json(self) -> str:
        return self.model_dump_json()

    def to_entry(self, bus_name: str) -> dict[str, Any]:
        """The PutEvents entry for this event."""
        return {
            "EventBusName": bus_name,
            "Source": self.SOURCE,
            "DetailType": self.DETAIL_TYPE,
            "Detail": self.detail_json(),
        }

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> Event:
        """Parse a detail as a consumer: unknown fields from newer producers are ignored."""
        known = {k: v for k, v in detail.items() if k in cls.model_fields}
        return cls.model_validate(known)


class UnknownEventError(BadRequestError):
    slug, title = "unknown-event", "Unknown event type"


# The modules that declare contracts; imported on first lookup, so a function pays for them only when it
# parses an event it did not import itself (thirty-odd models cost ~80 ms of cold start).
CONTRACT_MODULES = ("entities", "evaluation", "models", "planning", "runtime", "supervision", "tools")


def load_contracts() -> dict[str, type[Event]]:
    """Import every contract module (once) and return the full registry."""
    for module in CONTRACT_MODULES:
        importlib.import_module(f"strata.events.{module}")
    return EVENT_TYPES


def event_model(detail_type: str) -> type[Event]:
    """The model registered for `detail_type`."""
    model = EVENT_TYPES.get(detail_type) or load_contracts().get(detail_type)
    if model is None:
        raise UnknownEventError(f"no event type {detail_type!r} is registered")
    return model


def parse_eventbridge(event: dict[str, Any]) -> Event:
    """Turn an EventBridge event (as delivered to a Lambda target) into its typed model."""
    model = event_model(str(event.get("detail-type")))
    if event.get("source") != model.SOURCE:
        raise UnknownEventError(f"{model.DETAIL_TYPE} must come from {model.SOURCE}, not {event.get('source')!r}")
    detail = event.get("detail")
    if isinstance(detail, str):
        detail = json.loads(detail)
    if not isinstance(detail, dict):
        raise UnknownEventError("an event's detail must be an object")
    return model.from_detail(detail)
