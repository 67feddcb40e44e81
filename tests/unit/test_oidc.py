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


async def test_keys_are_fetched_once_and_unknown_kids_cannot_force_refetches(monkeypatch: pytest.MonkeyPatch) -> None:
    from strata_api_gateway import oidc
    from tests.support.oidc import TestIssuer

    issuer = TestIssuer().start()
    try:
        monkeypatch.setenv("STRATA_OIDC_JWKS_MIN_REFRESH_S", "3600")
        oidc.settings.cache_clear()
        cache = oidc.JwksCache()
        config = OidcIssuer(**issuer.config())
        for kid in ("rsa-1", "ec-1", "rsa-1"):
            assert await cache.signing_key(config, kid) is not None
        assert issuer.jwks_requests == 1  # discovery once, the key set once
        for _ in range(5):
            assert await cache.signing_key(config, "forged") is None
        assert issuer.jwks_requests == 1  # within the refresh interval a forged kid costs no fetch

        monkeypatch.setenv("STRATA_OIDC_JWKS_MIN_REFRESH_S", "0")
        oidc.settings.cache_clear()
        assert await cache.signing_key(config, "rotated-in") is None
        assert issuer.jwks_requests == 2  # past it, an unknown kid refetches once (a key rotation is picked up)
    finally:
        issuer.stop()
        oidc.settings.cache_clear()
