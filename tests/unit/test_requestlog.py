"""Request-log stream entries: one JSON field per entry, and the field-per-value form read as well."""

from __future__ import annotations

from dataclasses import asdict

from strata.requestlog import RequestRecord

RECORD = RequestRecord(
    "req-1",
    "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "key:1",
    "GET /v1/agents",
    "GET",
    "/v1/agents",
    200,
    1.5,
    0,
    120,
    "2026-11-27T12:00:00+00:00",
)


def test_an_entry_round_trips_through_its_one_field() -> None:
    fields = RECORD.fields()
    assert list(fields) == ["r"]
    assert RequestRecord.from_fields(fields) == RECORD


def test_the_field_per_value_form_is_still_read() -> None:
    old = {k: str(v) for k, v in asdict(RECORD).items()}
    assert RequestRecord.from_fields(old) == RECORD
