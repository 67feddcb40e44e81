"""The console views' sections: a scope the caller lacks or a layer that does not answer costs one section, never
the view."""

from __future__ import annotations

import uuid

import pytest

from strata import peers
from strata.auth import Principal
from strata.errors import DependencyUnavailableError
from strata_human_interface.service import Reader


def _reader(*scopes: str) -> Reader:
    principal = Principal(tenant_id=uuid.uuid4(), principal_id="key:k", kind="api_key", scopes=frozenset(scopes))
    return Reader(principal, "corr")


async def test_a_section_holds_its_data() -> None:
    async def fetch() -> dict[str, int]:
        return {"n": 1}

    assert await _reader("runs:read").section(("runs:read",), fetch) == {"ok": True, "data": {"n": 1}}
    assert (await _reader("admin").section(("runs:read", "budgets:read"), fetch))["ok"]  # admin holds both


async def test_a_missing_scope_is_named_and_nothing_is_fetched() -> None:
    async def fetch() -> None:
        raise AssertionError("fetched without the scope")

    part = await _reader("runs:read").section(("models:read", "budgets:read", "runs:read"), fetch)
    assert part == {"ok": False, "error": "needs the scope models:read, budgets:read", "reason": "forbidden"}


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (DependencyUnavailableError("GET /v1/status failed: ClientConnectorError"), "GET /v1/status failed"),
        (peers.PeerStatusError("/v1/alerts", 503), "GET /v1/alerts answered 503"),
    ],
)
async def test_a_layer_that_does_not_answer_costs_its_section_only(error: Exception, said: str) -> None:
    async def fetch() -> None:
        raise error

    part = await _reader("admin").section(("status:read",), fetch)
    assert (part["ok"], part["reason"]) == (False, "unavailable")
    assert said in part["error"]
