"""JWT bearer tokens from trusted OIDC issuers: JWKS fetched and cached, RS256/ES256 signatures, issuer,
audience and expiry checked; tenant and scopes come from configurable claims."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, field_validator

from strata import db
from strata.auth import Principal
from strata.config import Settings
from strata.scopes import SCOPES, SERVICE

if TYPE_CHECKING:
    from jwt import PyJWKSet

logger = Logger(child=True)

ALLOWED_ALGORITHMS = ("RS256", "ES256")  # asymmetric only: no "none", no HMAC (algorithm-confusion attacks)


class OidcIssuer(BaseModel):
    """One trusted issuer. A token's tenant is the fixed `tenant` (id or name) or the value of `tenant_claim`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(min_length=1, description="The exact `iss` value")
    audience: str = Field(min_length=1, description="The `aud` value tokens must carry")
    jwks_uri: HttpUrl | None = Field(default=None, description="Else discovered from the issuer's metadata")
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
    tenant: str | None = Field(default=None, description="Every token of this issuer belongs to this tenant")
    tenant_claim: str = "tenant_id"
    scopes_claim: str = "scope"
    scope_prefix: str = Field(default="", description="Stripped from each scope, e.g. 'strata:'")
    principal_claim: str = "sub"
    leeway_s: int = Field(default=30, ge=0, le=300)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in value if a not in ALLOWED_ALGORITHMS]
        if bad or not value:
            raise ValueError(f"algorithms must be a non-empty subset of {ALLOWED_ALGORITHMS}, not {bad}")
        return value


class OidcSettings(Settings):
    oidc_issuers: str = Field(default="", description="JSON list of trusted issuers (see OidcIssuer)")
    oidc_jwks_ttl_s: float = Field(default=600.0, ge=0, description="How long fetched keys are trusted")
    oidc_jwks_min_refresh_s: float = Field(default=30.0, ge=0, description="Least time between refetches")
    oidc_http_timeout_s: float = Field(default=3.0, gt=0)


_ISSUERS = TypeAdapter(list[OidcIssuer])


@lru_cache
def settings() -> OidcSettings:
    return OidcSettings()


@lru_cache
def issuers() -> dict[str, OidcIssuer]:
    """The configured issuers by `iss` (a malformed setting fails the function's first JWT, loudly)."""
    raw = settings().oidc_issuers.strip()
    return {i.issuer: i for i in _ISSUERS.validate_python(json.loads(raw))} if raw else {}


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


@dataclass
class _KeySet:
    keys: PyJWKSet
    fetched_at: float


class JwksCache:
    """Each issuer's signing keys, refetched when stale or when a token names an unknown key id — but never
    more often than `min_refresh_s`, so forged key ids cannot turn the authorizer into a fetch loop."""

    def __init__(self) -> None:
        self._sets: dict[str, _KeySet] = {}
        self._jwks_uris: dict[str, str] = {}

    def clear(self) -> None:
        self._sets.clear()
        self._jwks_uris.clear()

    async def signing_key(self, issuer: OidcIssuer, kid: str | None) -> Any | None:
        """The PyJWK for `kid` (or the only key when the token names none), else None."""
        cfg = settings()
        now = time.monotonic()
        current = self._sets.get(issuer.issuer)
        if current is None or now - current.fetched_at > cfg.oidc_jwks_ttl_s:
            current = await self._refresh(issuer, now)
        key = _find(current.keys, kid)
        if key is None and now - current.fetched_at >= cfg.oidc_jwks_min_refresh_s:
            current = await self._refresh(issuer, now)
            key = _find(current.keys, kid)
        return key

    async def _refresh(self, issuer: OidcIssuer, now: float) -> _KeySet:
        from jwt import PyJWKSet

        timeout = settings().oidc_http_timeout_s
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            uri = str(issuer.jwks_uri) if issuer.jwks_uri else self._jwks_uris.get(issuer.issuer)
            if uri is None:
                discovery = issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
                metadata = (await client.get(discovery)).raise_for_status().json()
                uri = str(metadata["jwks_uri"])
                self._jwks_uris[issuer.issuer] = uri
            jwks = (await client.get(uri)).raise_for_status().json()
        keys = PyJWKSet.from_dict(jwks)
        fresh = _KeySet(keys, now)
        self._sets[issuer.issuer] = fresh
        logger.info("fetched JWKS", extra={"issuer": issuer.issuer, "keys": len(keys.keys)})
        return fresh


def _find(keys: PyJWKSet, kid: str | None) -> Any | None:
    if kid is None:
        return keys.keys[0] if len(keys.keys) == 1 else None
    return next((k for k in keys.keys if k.key_id == kid), None)


JWKS = JwksCache()


def _scopes(issuer: OidcIssuer, claims: dict[str, Any]) -> frozenset[str]:
    """Known, grantable scopes from the claim (a space-separated string or a list); others are dropped."""
    raw = claims.get(issuer.scopes_claim, [])
    items = raw.split() if isinstance(raw, str) else [str(s) for s in raw] if isinstance(raw, list) else []
    prefix = issuer.scope_prefix
    stripped = (s[len(prefix) :] if prefix and s.startswith(prefix) else s for s in items)
    return frozenset(s for s in stripped if s in SCOPES and s != SERVICE)


async def _tenant(reference: str) -> tuple[UUID, str, tuple[str, ...]] | None:
    """(tenant id, tier, CORS origins) of the active tenant with this id or name."""
    try:
        by_id: UUID | None = UUID(reference)
    except ValueError:
        by_id = None
    pool = await db.get_pool()
    row = await pool.fetchrow(
        "SELECT tenant_id, tier, cors_origins FROM tenants WHERE (tenant_id = $1 OR name = $2) AND status = 'active'",
        by_id,
        reference,
    )
    return (row["tenant_id"], row["tier"], tuple(row["cors_origins"])) if row else None


async def verify(token: str) -> Principal | None:
    """The principal of a valid token from a trusted issuer, else None (the reason is logged, not returned)."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = issuers().get(str(unverified.get("iss", "")))
    alg = header.get("alg")
    if issuer is None or alg not in issuer.algorithms:
        logger.info("JWT from an untrusted issuer or with a refused algorithm", extra={"alg": alg})
        return None
    try:
        key = await JWKS.signing_key(issuer, header.get("kid"))
    except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
        logger.warning("JWKS unavailable", extra={"issuer": issuer.issuer, "error": str(exc)[:300]})
        return None
    if key is None or (key.algorithm_name and key.algorithm_name != alg):
        logger.info("JWT names an unknown key or the key's algorithm differs", extra={"kid": header.get("kid")})
        return None
    try:
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=[alg],
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=issuer.leeway_s,
            options={"require": ["exp", "iss", "aud", issuer.principal_claim]},
        )
    except jwt.PyJWTError as exc:
        logger.info("JWT rejected", extra={"reason": type(exc).__name__})
        return None
    reference = issuer.tenant or claims.get(issuer.tenant_claim)
    tenant = await _tenant(str(reference)) if reference else None
    if tenant is None:
        logger.info("JWT names no active tenant", extra={"issuer": issuer.issuer})
        return None
    tenant_id, tier, origins = tenant
    subject = str(claims[issuer.principal_claim])
    return Principal(tenant_id, f"jwt:{issuer.issuer}#{subject}", "jwt", _scopes(issuer, claims), tier, origins)
