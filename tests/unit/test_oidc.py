"""OIDC issuer configuration and the scope mapping of JWT claims."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from strata_api_gateway.oidc import OidcIssuer, _scopes, looks_like_jwt


def test_only_asymmetric_algorithms_can_be_trusted() -> None:
    with pytest.raises(ValidationError, match="subset"):
        OidcIssuer(issuer="https://id.example", audience="strata", algorithms=("HS256",))
    with pytest.raises(ValidationError):
        OidcIssuer(issuer="https://id.example", audience="strata", algorithms=())
    assert OidcIssuer(issuer="https://id.example", audience="strata").algorithms == ("RS256", "ES256")


def test_scopes_come_from_a_string_or_a_list_and_only_known_grantable_ones_survive() -> None:
    issuer = OidcIssuer(issuer="i", audience="a", scope_prefix="strata:", scopes_claim="scp")
    claims = {"scp": ["strata:runs:read", "strata:service", "strata:nope", "goals:write", "email"]}
    assert _scopes(issuer, claims) == {"runs:read", "goals:write"}
    assert _scopes(issuer, {"scp": "strata:admin openid"}) == {"admin"}
    assert _scopes(issuer, {"scp": 42}) == frozenset()
    assert _scopes(issuer, {}) == frozenset()


def test_a_jwt_is_told_apart_from_keys_and_service_tokens() -> None:
    assert looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert not looks_like_jwt("sk_0123abcd_" + "x" * 40)
    assert not looks_like_jwt("svc.payload.signature")
