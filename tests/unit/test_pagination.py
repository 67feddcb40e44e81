"""Keyset cursors: what the API issues decodes back to the same position; anything else is a 400."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from strata.errors import BadRequestError
from strata.pagination import decode_cursor, encode_cursor


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC),
        datetime(2025, 1, 15, 10, 30, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=["utc-micros", "utc-whole-second", "offset"],
)
def test_a_cursor_decodes_to_the_position_it_encodes(created_at: datetime) -> None:
    row_id = uuid4()

    decoded = decode_cursor(encode_cursor(created_at, row_id))

    assert decoded == (created_at, row_id)
    assert decoded[0].utcoffset() == created_at.utcoffset()


def test_a_cursor_is_url_safe() -> None:
    cursor = encode_cursor(datetime.now(UTC), uuid4())

    assert cursor.isascii()
    assert not set(cursor) & set("+/=&?# ")


def test_distinct_positions_give_distinct_cursors() -> None:
    created_at = datetime.now(UTC)

    assert encode_cursor(created_at, uuid4()) != encode_cursor(created_at, uuid4())


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-cursor", id="words"),
        pytest.param("!!!", id="not-base64"),
        pytest.param("a", id="bad-base64-length"),
        pytest.param(b64("null"), id="json-null"),
        pytest.param(b64("42"), id="json-number"),
        pytest.param(b64('{"created_at": "2025-01-15T10:30:00+00:00"}'), id="json-object"),
        pytest.param(b64('["2025-01-15T10:30:00+00:00"]'), id="one-element"),
        pytest.param(b64(f'["2025-01-15T10:30:00+00:00", "{uuid4()}", 1]'), id="three-elements"),
        pytest.param(b64(f'["yesterday", "{uuid4()}"]'), id="bad-timestamp"),
        pytest.param(b64('["2025-01-15T10:30:00+00:00", "row-1"]'), id="bad-uuid"),
        pytest.param(b64("[1, 2]"), id="numbers"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode(), id="binary"),
    ],
)
def test_a_cursor_the_api_did_not_issue_is_a_400(cursor: str) -> None:
    with pytest.raises(BadRequestError, match=r"not one this API issued") as caught:
        decode_cursor(cursor)

    assert caught.value.status == 400
    assert caught.value.to_problem()["type"].endswith("/bad-request")
