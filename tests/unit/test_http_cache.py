"""Conditional GET (strata.http_cache): strong ETags from a body's bytes, If-None-Match compared as RFC 9110 says,
and 304 without the body when the caller has the representation already."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from starlette.requests import Request

from strata.http_cache import PRIVATE_REVALIDATE, conditional_json, content_etag, none_match


class Thing(BaseModel):
    name: str
    at: datetime


def request(if_none_match: str | None = None) -> Request:
    headers = [] if if_none_match is None else [(b"if-none-match", if_none_match.encode())]
    return Request({"type": "http", "method": "GET", "path": "/v1/things/1", "headers": headers})


def test_an_etag_is_strong_and_follows_the_bytes() -> None:
    etag = content_etag(b'{"a":1}')

    assert etag.startswith('"')
    assert etag.endswith('"')
    assert etag == content_etag(b'{"a":1}')
    assert etag != content_etag(b'{"a":2}')


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ('"abc"', True),
        ('W/"abc"', True),  # If-None-Match compares weakly
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("", False),
    ],
)
def test_if_none_match_names_the_representation(header: str | None, matches: bool) -> None:
    assert none_match(request(header), '"abc"') is matches


def test_a_conditional_response_carries_its_etag_and_answers_304_without_the_body_once_the_caller_has_it() -> None:
    # GIVEN a representation fetched once
    value = {"name": "ada", "at": datetime(2026, 1, 2, tzinfo=UTC), "dropped": "not in the model"}
    first = conditional_json(request(), Thing, value)
    etag = first.headers["etag"]

    # THEN it is the model's JSON, tagged with the hash of exactly those bytes, private and always revalidated
    assert first.status_code == 200
    assert bytes(first.body) == b'{"name":"ada","at":"2026-01-02T00:00:00Z"}'
    assert etag == content_etag(bytes(first.body))
    assert first.headers["cache-control"] == PRIVATE_REVALIDATE
    assert first.headers["content-type"] == "application/json"

    # WHEN it is asked for again with that ETag: 304, no body, the same ETag
    again = conditional_json(request(etag), Thing, value)
    assert (again.status_code, again.body, again.headers["etag"]) == (304, b"", etag)

    # AND once it changed, the caller's ETag gets the new body
    changed = conditional_json(request(etag), Thing, {**value, "name": "grace"})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
