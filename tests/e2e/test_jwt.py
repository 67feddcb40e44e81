"""JWT bearer tokens from a trusted OIDC issuer, through the local cloud's authorizer (keys generated here)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem
from tests.support.oidc import TestIssuer

pytestmark = pytest.mark.e2e


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_a_valid_token_maps_to_its_tenant_and_scopes(
    platform: Platform, oidc_issuer: TestIssuer, alg: str
) -> None:
    token = oidc_issuer.token(alg, tenant_id=platform.tenant_id, scope="tenant:read agents:read not-a-scope service")
    response = await platform.api.get("/v1/tenant", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["tenant_id"] == platform.tenant_id
    # only the scopes it was given (unknown ones and `service` are dropped): keys are out of reach
    denied = await platform.api.get("/v1/api-keys", headers=bearer(token))
    assert_problem(denied, 403)


async def test_the_tenant_claim_may_hold_the_tenant_id_or_its_name(platform: Platform, oidc_issuer: TestIssuer) -> None:
    tenant = await platform.new_tenant(f"jwt-{uuid.uuid4().hex[:8]}")
    by_id = await platform.api.get(
        "/v1/tenant", headers=bearer(oidc_issuer.token(scope="tenant:read", tenant_id=tenant["tenant_id"]))
    )
    assert by_id.status_code == 200, by_id.text
    name = by_id.json()["name"]
    by_name = await platform.api.get(
        "/v1/tenant", headers=bearer(oidc_issuer.token(scope="tenant:read", tenant_id=name))
    )
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["tenant_id"] == by_id.json()["tenant_id"] == tenant["tenant_id"]


async def test_every_bad_token_is_refused(platform: Platform, oidc_issuer: TestIssuer) -> None:
    claims = {"tenant_id": platform.tenant_id, "scope": "tenant:read"}
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = oidc_issuer.rsa.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    bad = {
        "expired": oidc_issuer.token(**claims, exp=1_000_000_000, iat=999_999_000),
        "wrong audience": oidc_issuer.token(**claims, aud="someone-else"),
        "wrong issuer": oidc_issuer.token(**claims, iss="https://evil.example"),
        "wrong signature": oidc_issuer.token(**claims, key=other_key),
        "unknown kid": oidc_issuer.token(**claims, kid="rotated-away"),
        "no expiry": oidc_issuer.token(**claims, exp=None),
        "unknown tenant": oidc_issuer.token(tenant_id=str(uuid.uuid4()), scope="tenant:read"),
        "no tenant": oidc_issuer.token(scope="tenant:read"),
        "RS256 public key as an HS256 secret": _hs256_confusion(oidc_issuer, public_pem, claims),
        "alg none": jwt.encode(
            {"iss": oidc_issuer.issuer, "aud": "strata-api", "sub": "x", "exp": 4_000_000_000, **claims},
            "",
            algorithm="none",
        ),
        "tampered payload": _tamper(oidc_issuer.token(**claims)),
    }
    for name, token in bad.items():
        response = await platform.api.get("/v1/tenant", headers=bearer(token))
        assert response.status_code in (401, 403), f"{name}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/problem+json"), name


def _hs256_confusion(issuer: TestIssuer, public_pem: bytes, claims: dict[str, str]) -> str:
    """The classic algorithm-confusion forgery: HS256 keyed with the issuer's public key (PyJWT refuses to sign
    with a PEM key as an HMAC secret, so the signature is made by hand)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = {"iss": issuer.issuer, "aud": "strata-api", "sub": "x", "exp": 4_000_000_000, **claims}
    payload = b64(json.dumps(body).encode())
    signature = b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"
