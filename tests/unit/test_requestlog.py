"""Request-log spool entries: the record as one JSON array."""

from __future__ import annotations

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


def test_an_entry_round_trips_through_its_encoding() -> None:
    assert RequestRecord.decode(RECORD.encode()) == RECORD
