"""Event contracts: sample events, round trips, schema snapshots, and the rules every event type follows."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from strata.events import EVENT_TYPES, Event, UnknownEventError, parse_eventbridge
from strata.layers import LAYERS

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO_ROOT / "events" / "eventbridge"
SNAPSHOT = Path(__file__).with_name("snapshots") / "event_schemas.json"
UPDATE_SNAPSHOTS_ENV = "STRATA_UPDATE_SNAPSHOTS"
REGENERATE_HINT = (
    f"If the change is intended, regenerate the snapshot with\n"
    f"    {UPDATE_SNAPSHOTS_ENV}=1 .venv/bin/python -m pytest tests/unit/test_event_contracts.py\n"
    f"and commit {SNAPSHOT.relative_to(REPO_ROOT)}. A changed schema is a contract change: "
    f"consumers of older versions must still parse what producers send."
)

# The keys of an event EventBridge delivers to a Lambda target.
EVENTBRIDGE_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
ENVELOPE_FIELDS = {"event_id", "tenant_id", "correlation_id", "causation_id", "occurred_at", "schema_version"}
PASCAL_CASE = re.compile(r"^(?:[A-Z][a-z0-9]+)+$")
# Past participles that do not end in "-ed", and the state words the design names (TaskReady); extend when an
# event needs one.
IRREGULAR_PAST = {
    "Built",
    "Chosen",
    "Found",
    "Given",
    "Held",
    "Lost",
    "Made",
    "Paid",
    "Run",
    "Sent",
    "Set",
    "Taken",
    "Ready",
}

DETAIL_TYPES = sorted(EVENT_TYPES)


def sample_path(detail_type: str) -> Path:
    return SAMPLES_DIR / f"{detail_type}.json"


def load_sample(detail_type: str) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(sample_path(detail_type).read_text(encoding="utf-8"))
    return sample


def fresh_sample(detail_type: str, **detail_changes: Any) -> dict[str, Any]:
    """A copy of the sample with a new event id (and any detail fields replaced)."""
    sample = copy.deepcopy(load_sample(detail_type))
    sample["id"] = str(uuid4())
    sample["detail"].update(event_id=str(uuid4()), **detail_changes)
    return sample


def current_schemas() -> dict[str, Any]:
    return {detail_type: EVENT_TYPES[detail_type].model_json_schema() for detail_type in DETAIL_TYPES}


# (a) every registered type has a sample, and every sample names a registered type


def test_every_registered_event_type_has_a_sample_file() -> None:
    missing = [t for t in DETAIL_TYPES if not sample_path(t).is_file()]

    assert not missing, f"add events/eventbridge/<DetailType>.json for: {missing}"


def test_every_sample_file_names_a_registered_event_type() -> None:
    sample_names = sorted(path.stem for path in SAMPLES_DIR.glob("*.json"))
    unregistered = [name for name in sample_names if name not in EVENT_TYPES]

    assert sample_names, f"no samples in {SAMPLES_DIR}"
    assert not unregistered, f"samples for event types that are not registered: {unregistered}"


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_sample_is_a_full_eventbridge_event_for_its_type(detail_type: str) -> None:
    sample = load_sample(detail_type)
    model = EVENT_TYPES[detail_type]

    assert set(sample) == EVENTBRIDGE_KEYS
    assert sample["version"] == "0"
    assert sample["detail-type"] == detail_type == model.DETAIL_TYPE
    assert sample["source"] == model.SOURCE
    assert sample["resources"] == []
    assert re.fullmatch(r"\d{12}", sample["account"])
    assert ENVELOPE_FIELDS.issubset(sample["detail"])
    assert set(sample["detail"]) == set(model.model_fields), "the sample's detail should carry every field"


# (b) samples parse into their model, and dumping the model gives the detail back


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_sample_parses_into_its_model_and_round_trips(detail_type: str) -> None:
    sample = load_sample(detail_type)

    event = parse_eventbridge(sample)

    assert type(event) is EVENT_TYPES[detail_type]
    assert event.model_dump(mode="json") == sample["detail"]


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_a_detail_delivered_as_a_json_string_parses_the_same(detail_type: str) -> None:
    sample = fresh_sample(detail_type)
    as_string = {**sample, "detail": json.dumps(sample["detail"])}

    assert parse_eventbridge(as_string) == parse_eventbridge(sample)


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_what_a_producer_puts_on_the_bus_parses_back_to_the_same_event(detail_type: str) -> None:
    # GIVEN an event as a producer builds it
    produced = parse_eventbridge(fresh_sample(detail_type))

    # WHEN it becomes a PutEvents entry and EventBridge delivers it
    entry = produced.to_entry("strata-test-bus")
    delivered = {
        **fresh_sample(detail_type),
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "detail": json.loads(entry["Detail"]),
    }

    # THEN the consumer gets an equal event
    assert entry["EventBusName"] == "strata-test-bus"
    assert parse_eventbridge(delivered) == produced


# (c) the JSON Schema of every event model matches the committed snapshot


def test_event_json_schemas_match_the_snapshot() -> None:
    current = current_schemas()
    if os.environ.get(UPDATE_SNAPSHOTS_ENV) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"rewrote {SNAPSHOT}")
        return
    if not SNAPSHOT.is_file():
        pytest.fail(f"{SNAPSHOT} is missing.\n{REGENERATE_HINT}")

    committed = json.loads(SNAPSHOT.read_text(encoding="utf-8"))

    changed = sorted(t for t in set(current) | set(committed) if current.get(t) != committed.get(t))
    assert not changed, (
        f"the JSON Schema of {changed} differs from {SNAPSHOT.name} "
        f"(added: {sorted(set(current) - set(committed))}, removed: {sorted(set(committed) - set(current))}).\n"
        f"{REGENERATE_HINT}"
    )


# (d) a wrong source or an unregistered detail type is refused


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_a_sample_from_the_wrong_source_is_refused(detail_type: str) -> None:
    sample = {**fresh_sample(detail_type), "source": "strata.impostor"}

    with pytest.raises(UnknownEventError, match=r"must come from") as caught:
        parse_eventbridge(sample)

    assert caught.value.status == 400


@pytest.mark.parametrize("detail_type", ["TenantDeleted", "tenantcreated", "", "None"])
def test_an_unregistered_detail_type_is_refused(detail_type: str) -> None:
    sample = {**fresh_sample(DETAIL_TYPES[0]), "detail-type": detail_type}

    with pytest.raises(UnknownEventError, match=r"no event type"):
        parse_eventbridge(sample)


def test_an_event_without_a_detail_type_is_refused() -> None:
    sample = fresh_sample(DETAIL_TYPES[0])
    del sample["detail-type"]

    with pytest.raises(UnknownEventError):
        parse_eventbridge(sample)


@pytest.mark.parametrize("detail", [None, [], "[1, 2]", 42])
def test_a_detail_that_is_not_an_object_is_refused(detail: Any) -> None:
    sample = {**fresh_sample(DETAIL_TYPES[0]), "detail": detail}

    with pytest.raises(UnknownEventError, match=r"detail must be an object"):
        parse_eventbridge(sample)


# (e) consumers tolerate fields from newer producers; producers may not invent fields


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_consumers_ignore_unknown_fields(detail_type: str) -> None:
    sample = fresh_sample(detail_type)
    newer = copy.deepcopy(sample)
    newer["detail"]["added_by_a_newer_producer"] = {"nested": [1, 2, 3]}

    event = parse_eventbridge(newer)

    assert event == parse_eventbridge(sample)
    assert "added_by_a_newer_producer" not in event.model_dump()
    assert EVENT_TYPES[detail_type].from_detail(newer["detail"]) == event


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_producers_cannot_construct_events_with_unknown_fields(detail_type: str) -> None:
    model = EVENT_TYPES[detail_type]
    detail = fresh_sample(detail_type)["detail"]

    with pytest.raises(ValidationError, match=r"extra_forbidden|Extra inputs are not permitted"):
        model(**detail, added_by_mistake="x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        model.model_validate({**detail, "added_by_mistake": "x"})


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_consumers_still_validate_known_fields(detail_type: str) -> None:
    sample = fresh_sample(detail_type, tenant_id="not-a-uuid")

    with pytest.raises(ValidationError, match=r"tenant_id"):
        parse_eventbridge(sample)


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_events_are_immutable(detail_type: str) -> None:
    event = parse_eventbridge(fresh_sample(detail_type))

    with pytest.raises(ValidationError, match=r"frozen"):
        event.correlation_id = "changed"  # type: ignore[misc]


# (f) naming rules


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_detail_types_are_past_tense_pascal_case(detail_type: str) -> None:
    model = EVENT_TYPES[detail_type]
    last_word = re.findall(r"[A-Z][a-z0-9]*", detail_type)[-1]

    assert detail_type == model.DETAIL_TYPE
    assert PASCAL_CASE.fullmatch(detail_type), f"{detail_type} is not PascalCase"
    assert last_word.endswith("ed") or last_word in IRREGULAR_PAST, f"{detail_type} does not end in a past tense"


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_sources_name_a_strata_layer(detail_type: str) -> None:
    source = EVENT_TYPES[detail_type].SOURCE

    assert source.startswith("strata.")
    assert source.removeprefix("strata.") in LAYERS, f"{source} is not strata.<layer>"


def test_registering_a_detail_type_twice_is_refused() -> None:
    taken = DETAIL_TYPES[0]

    with pytest.raises(TypeError, match=r"registered twice"):
        type("Duplicate", (Event,), {"DETAIL_TYPE": taken, "SOURCE": "strata.data", "__module__": __name__})

    assert EVENT_TYPES[taken].__name__ == taken
