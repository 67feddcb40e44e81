"""The HTTP API's Lambda authorizer (REQUEST type, payload 2.0, simple responses)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from strata.auth import Principal, bearer_token, split_api_key, verify_api_key_secret, verify_service_token
from strata_api_gateway import store

logger = Logger(child=True)

DENY: dict[str, Any] = {"isAuthorized": False}


async def resolve_principal(token: str) -> Principal | None:
    """The principal a bearer token proves: an API key (checked against the key store), a service token (the
    service secret) or a JWT from a trusted OIDC issuer."""
    if token.startswith("svc."):
        return verify_service_token(token)
    if token.startswith("eyJ"):  # a JWT; its verifier (and cryptography) loads only when one arrives
        from strata_api_gateway import oidc

        return await oidc.verify(token) if oidc.looks_like_jwt(token) else None
    parts = split_api_key(token)
    if parts is None:
        return None
    prefix, secret = parts
    row = await store.find_active_key(prefix)
    if row is None or not verify_api_key_secret(secret, row["salt"], row["digest"]):
        return None
    return Principal(
        row["tenant_id"],
        f"key:{row['key_id']}",
        "api_key",
        frozenset(row["scopes"]),
        row["tier"],
        tuple(row["cors_origins"]),
    )


async def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """Allow with the principal as context, or deny; never raises for a bad credential."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    token = bearer_token(headers.get("authorization"))
    if token is None:
        return DENY
    principal = await resolve_principal(token)
    if principal is None:
        logger.info("credential denied", extra={"route": event.get("routeKey")})
        return DENY
    return {"isAuthorized": True, "context": principal.to_context()}
