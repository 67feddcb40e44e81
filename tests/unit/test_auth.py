"""Credentials: API keys, service tokens, the principal in the authorizer context, and bearer headers."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any
from uuid import uuid4

import pytest

from strata.auth import (
    ADMIN_SCOPE,
    SERVICE_SCOPE,
    Principal,
    bearer_token,
    mint_api_key,
    mint_service_token,
    split_api_key,
    verify_api_key_secret,
    verify_service_token,
)
from strata.errors import ForbiddenError, UnauthorizedError

SetEnv = Callable[..., None]  # the `settings_env` fixture (tests/unit/conftest.py)


def make_principal(scopes: Iterable[str] = ("agents:read",), kind: str = "api_key") -> Principal:
    return Principal(uuid4(), f"key:{uuid4()}", kind, frozenset(scopes))


def flip_last_char(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


@pytest.fixture
def service_secret(settings_env: SetEnv) -> str:
    """A fresh service token secret, configured through the environment."""
    secret = secrets.token_urlsafe(32)
    settings_env(STRATA_SERVICE_TOKEN_SECRET=secret, STRATA_SERVICE_TOKEN_SECRET_ID=None)
    return secret


# API keys


def test_a_minted_api_key_splits_into_its_prefix_and_a_verifiable_secret() -> None:
    key = mint_api_key()

    parts = split_api_key(key.token)

    assert parts is not None
    prefix, secret = parts
    assert key.token.startswith(f"sk_{key.prefix}_")
    assert prefix == key.prefix
    assert secret not in (key.salt, key.digest)
    assert verify_api_key_secret(secret, key.salt, key.digest)


def test_minted_api_keys_are_unique() -> None:
    first, second = mint_api_key(), mint_api_key()

    assert first.token != second.token
    assert first.salt != second.salt
    assert first.digest != second.digest


def test_a_tampered_api_key_secret_does_not_verify() -> None:
    key = mint_api_key()
    parts = split_api_key(key.token)
    assert parts is not None

    assert not verify_api_key_secret(flip_last_char(parts[1]), key.salt, key.digest)


def test_an_api_key_secret_does_not_verify_against_another_keys_salt() -> None:
    key, other = mint_api_key(), mint_api_key()
    parts = split_api_key(key.token)
    assert parts is not None

    assert not verify_api_key_secret(parts[1], other.salt, key.digest)


def test_underscores_inside_the_secret_are_kept() -> None:
    token = "sk_0a1b2c3d_" + "ab_cd-ef" * 5

    assert split_api_key(token) == ("0a1b2c3d", "ab_cd-ef" * 5)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("sk", id="prefix-only"),
        pytest.param("sk_0a1b2c3d", id="no-secret"),
        pytest.param("pk_0a1b2c3d_" + "x" * 43, id="wrong-kind"),
        pytest.param("SK_0a1b2c3d_" + "x" * 43, id="upper-case-kind"),
        pytest.param("sk_0a1b2c3_" + "x" * 43, id="short-prefix"),
        pytest.param("sk_0a1b2c3d4_" + "x" * 43, id="long-prefix"),
        pytest.param("sk_0a1b2c3d_" + "x" * 31, id="short-secret"),
        pytest.param("sk-0a1b2c3d-" + "x" * 43, id="dashes"),
        pytest.param("svc.payload.signature", id="service-token"),
    ],
)
def test_malformed_api_keys_do_not_split(token: str) -> None:
    assert split_api_key(token) is None


# Service tokens


def test_a_minted_service_token_verifies_as_a_service_principal_for_the_tenant(service_secret: str) -> None:
    tenant_id = uuid4()

    principal = verify_service_token(mint_service_token("runtime", tenant_id))

    assert principal == Principal(tenant_id, "service:runtime", "service", frozenset({SERVICE_SCOPE}))
    assert principal.has("agents:write"), "a service principal acts for its tenant in every scope"


def test_an_expired_service_token_is_rejected(service_secret: str) -> None:
    token = mint_service_token("runtime", uuid4(), ttl_s=-1)

    assert verify_service_token(token) is None


def test_a_service_token_with_a_tampered_signature_is_rejected(service_secret: str) -> None:
    token = mint_service_token("runtime", uuid4())

    assert verify_service_token(flip_last_char(token)) is None


def test_a_service_token_with_tampered_claims_is_rejected(service_secret: str) -> None:
    # GIVEN a valid token for one tenant
    prefix, payload, signature = mint_service_token("runtime", uuid4()).split(".")
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    # WHEN its claims are rewritten to another tenant, keeping the signature
    claims["tenant"] = str(uuid4())
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    # THEN the token is refused
    assert verify_service_token(f"{prefix}.{forged_payload}.{signature}") is None


def test_a_service_token_signed_with_another_secret_is_rejected(settings_env: SetEnv) -> None:
    settings_env(STRATA_SERVICE_TOKEN_SECRET=secrets.token_urlsafe(32), STRATA_SERVICE_TOKEN_SECRET_ID=None)
    token = mint_service_token("runtime", uuid4())

    settings_env(STRATA_SERVICE_TOKEN_SECRET=secrets.token_urlsafe(32))

    assert verify_service_token(token) is None


def test_without_a_secret_no_token_is_minted_and_none_verifies(settings_env: SetEnv) -> None:
    settings_env(STRATA_SERVICE_TOKEN_SECRET=secrets.token_urlsafe(32), STRATA_SERVICE_TOKEN_SECRET_ID=None)
    token = mint_service_token("runtime", uuid4())

    settings_env(STRATA_SERVICE_TOKEN_SECRET=None)

    with pytest.raises(UnauthorizedError, match=r"no service token secret"):
        mint_service_token("runtime", uuid4())
    assert verify_service_token(token) is None


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("svc.only-two", id="two-parts"),
        pytest.param("svc.a.b.c", id="four-parts"),
        pytest.param("jwt.e30.sig", id="wrong-prefix"),
        pytest.param("svc..", id="empty-parts"),
    ],
)
def test_malformed_service_tokens_are_rejected(service_secret: str, token: str) -> None:
    assert verify_service_token(token) is None


def test_a_service_token_with_a_non_ascii_signature_is_rejected(service_secret: str) -> None:
    prefix, payload, _ = mint_service_token("runtime", uuid4()).split(".")

    assert verify_service_token(f"{prefix}.{payload}.\u00e9") is None


# The principal in the authorizer context


@pytest.mark.parametrize("scopes", [(), ("agents:read",), ("agents:write", "agents:read", ADMIN_SCOPE)])
def test_a_principal_survives_the_authorizer_context(scopes: tuple[str, ...]) -> None:
    principal = make_principal(scopes)

    context = principal.to_context()

    assert all(isinstance(value, str) for value in context.values()), "simple responses carry string values"
    assert context["scopes"] == " ".join(sorted(scopes))
    assert Principal.from_context(context) == principal


@pytest.mark.parametrize("missing", ["tenant_id", "principal_id", "kind"])
def test_a_context_missing_a_key_is_unauthorized(missing: str) -> None:
    context = make_principal().to_context()
    del context[missing]

    with pytest.raises(UnauthorizedError) as caught:
        Principal.from_context(context)

    assert caught.value.status == 401


def test_a_context_with_a_malformed_tenant_is_unauthorized() -> None:
    context = {**make_principal().to_context(), "tenant_id": "tenant-1"}

    with pytest.raises(UnauthorizedError):
        Principal.from_context(context)


def test_a_context_without_scopes_grants_none() -> None:
    context = make_principal().to_context()
    del context["scopes"]

    assert Principal.from_context(context).scopes == frozenset()


def test_require_raises_forbidden_naming_the_missing_scope() -> None:
    principal = make_principal(["agents:read"])

    with pytest.raises(ForbiddenError, match=r"agents:write") as caught:
        principal.require("agents:write")

    problem = caught.value.to_problem("/agents", "req-1")
    assert caught.value.status == 403
    assert problem["required_scope"] == "agents:write"
    assert problem["type"].endswith("/forbidden")


def test_require_admits_a_held_scope() -> None:
    principal = make_principal(["agents:read"])

    principal.require("agents:read")

    assert principal.has("agents:read")
    assert not principal.has("agents:write")


@pytest.mark.parametrize("scope", ["agents:read", "agents:write", "keys:admin", "anything"])
def test_admin_implies_every_scope(scope: str) -> None:
    principal = make_principal([ADMIN_SCOPE])

    principal.require(scope)

    assert principal.has(scope)


# Authorization headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("Bearer abc.def", "abc.def", id="bearer"),
        pytest.param("bearer abc", "abc", id="lower-case-scheme"),
        pytest.param("BEARER abc", "abc", id="upper-case-scheme"),
        pytest.param("  Bearer   abc  ", "abc", id="extra-spaces"),
        pytest.param("Bearer", None, id="no-token"),
        pytest.param("Bearer    ", None, id="blank-token"),
        pytest.param("Basic dXNlcjpwYXNz", None, id="basic"),
        pytest.param("abc", None, id="bare-token"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_bearer_token_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected
