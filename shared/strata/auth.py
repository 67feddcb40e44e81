"""Credentials: API key format and hashing, service tokens, and the principal the authorizer passes on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from strata.config import get_settings, service_token_secret
from strata.errors import ForbiddenError, UnauthorizedError
from strata.scopes import ADMIN, SERVICE, implied_by_admin

API_KEY_PREFIX = "sk"
SERVICE_TOKEN_PREFIX = "svc"  # noqa: S105 - a token prefix, not a secret
ADMIN_SCOPE = ADMIN
SERVICE_SCOPE = SERVICE


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant, the principal's id, how they proved it, and their scopes."""

    tenant_id: UUID
    principal_id: str
    kind: str
    scopes: frozenset[str]
    tier: str = "standard"
    cors_origins: tuple[str, ...] = ()  # browser origins the tenant lets call the API

    def has(self, scope: str) -> bool:
        if scope in self.scopes:
            return True
        return implied_by_admin(scope) and (ADMIN_SCOPE in self.scopes or SERVICE_SCOPE in self.scopes)

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise ForbiddenError(f"this credential lacks the {scope!r} scope", required_scope=scope)

    def to_context(self) -> dict[str, str]:
        """The authorizer context (simple responses carry flat string values)."""
        return {
            "tenant_id": str(self.tenant_id),
            "principal_id": self.principal_id,
            "kind": self.kind,
            "scopes": " ".join(sorted(self.scopes)),
            "tier": self.tier,
            "cors_origins": " ".join(self.cors_origins),
        }

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> Principal:
        try:
            return cls(
                tenant_id=UUID(str(context["tenant_id"])),
                principal_id=str(context["principal_id"]),
                kind=str(context["kind"]),
                scopes=frozenset(str(context.get("scopes", "")).split()),
                tier=str(context.get("tier") or "standard"),
                cors_origins=tuple(str(context.get("cors_origins") or "").split()),
            )
        except (KeyError, ValueError) as exc:
            raise UnauthorizedError("the request carries no valid authorizer context") from exc


@dataclass(frozen=True)
class NewApiKey:
    """A freshly minted key: `token` is shown once; only `prefix`, `salt` and `digest` are stored."""

    token: str
    prefix: str
    salt: str
    digest: str


def mint_api_key() -> NewApiKey:
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return NewApiKey(f"{API_KEY_PREFIX}_{prefix}_{secret}", prefix, salt, hash_secret(secret, salt))


def hash_secret(secret: str, salt: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def split_api_key(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or len(parts[1]) != 8 or len(parts[2]) < 32:
        return None
    return parts[1], parts[2]


def verify_api_key_secret(secret: str, salt: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(secret, salt), digest)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str) -> str:
    key = service_token_secret().encode()
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def mint_service_token(
    service: str, tenant_id: UUID, ttl_s: int | None = None, extra_scopes: frozenset[str] = frozenset()
) -> str:
    """A short-lived credential for a layer-to-layer call made on behalf of `tenant_id`; `extra_scopes` adds scopes
    `service` does not imply (the operator's `platform:` ones, for L11's sagas)."""
    if not service_token_secret():
        raise UnauthorizedError("no service token secret is configured")
    exp = int(time.time()) + (get_settings().service_token_ttl_s if ttl_s is None else ttl_s)
    claims: dict[str, Any] = {"sub": service, "tenant": str(tenant_id), "exp": exp}
    if extra_scopes:
        claims["scopes"] = sorted(extra_scopes)
    payload = _b64(json.dumps(claims).encode())
    return f"{SERVICE_TOKEN_PREFIX}.{payload}.{_sign(payload)}"


def verify_service_token(token: str) -> Principal | None:
    """The principal of a valid, unexpired service token, else None."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != SERVICE_TOKEN_PREFIX or not service_token_secret():
        return None
    if not parts[2].isascii() or not hmac.compare_digest(_sign(parts[1]), parts[2]):
        return None
    try:
        claims = json.loads(_unb64(parts[1]))
        if int(claims["exp"]) < time.time():
            return None
        extra = claims.get("scopes", [])
        if not isinstance(extra, list) or not all(isinstance(scope, str) for scope in extra):
            return None
        scopes = frozenset({SERVICE_SCOPE, *extra})
        return Principal(UUID(claims["tenant"]), f"service:{claims['sub']}", "service", scopes)
    except (ValueError, KeyError, TypeError):
        return None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
