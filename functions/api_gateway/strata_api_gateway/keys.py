"""L09's logic for API keys (minted once, stored as salted hashes, rotated with a grace period) and the operator's
bootstrap command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from strata import db
from strata.auth import ADMIN_SCOPE, Principal, mint_api_key
from strata.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from strata.events.entities import ApiKeyCreated, ApiKeyRevoked, ApiKeyRotated, TenantCreated
from strata.events.outbox import UnitOfWork, unit_of_work
from strata.scopes import SERVICE, unknown
from strata_api_gateway import store


async def issue_key(
    uow: UnitOfWork,
    tenant_id: UUID,
    name: str,
    scopes: list[str],
    correlation_id: str,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    """Mint a key in the unit of work (stored as a salted hash, ApiKeyCreated emitted); the answer holds the
    secret as `api_key`, the only time it is ever shown."""
    key, key_id = mint_api_key(), uuid4()
    record = await store.insert_key(uow.conn, key_id, tenant_id, name, key, scopes, expires_at)
    await uow.emit(
        ApiKeyCreated(
            tenant_id=tenant_id, correlation_id=correlation_id, key_id=key_id, prefix=key.prefix, scopes=scopes
        )
    )
    return {**record, "api_key": key.token}


class BootstrapRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_name: str = Field(min_length=1, max_length=200)
    key_name: str = Field(default="bootstrap", min_length=1, max_length=200)
    scopes: list[str] = Field(default_factory=lambda: [ADMIN_SCOPE], min_length=1, max_length=50)


async def bootstrap(args: dict[str, Any]) -> dict[str, Any]:
    """Operator command: ensure a tenant exists and mint a key for it (the key is returned once)."""
    request = BootstrapRequest.model_validate(args)
    correlation_id = f"bootstrap-{uuid4()}"
    async with unit_of_work() as uow:
        tenant_id = await store.tenant_by_name(uow.conn, request.tenant_name)
        if tenant_id is None:
            tenant_id = uuid4()
            await store.insert_tenant(uow.conn, tenant_id, request.tenant_name)
            await uow.emit(TenantCreated(tenant_id=tenant_id, correlation_id=correlation_id, name=request.tenant_name))
        issued = await issue_key(uow, tenant_id, request.key_name, request.scopes, correlation_id)
    return {
        "tenant_id": str(tenant_id),
        "api_key": issued["api_key"],
        "key_id": str(issued["key_id"]),
        "prefix": issued["prefix"],
        "scopes": issued["scopes"],
    }


def _check_grantable(principal: Principal, scopes: list[str]) -> None:
    """Only known scopes, never `service`, and only scopes the caller holds (an admin holds all but the
    operator's)."""
    bad = unknown(scopes) + [s for s in scopes if s == SERVICE]
    if bad:
        raise InvalidInputError(f"not grantable scopes: {', '.join(sorted(set(bad)))}", scopes=sorted(set(bad)))
    missing = sorted(s for s in set(scopes) if not principal.has(s))
    if missing:
        raise ForbiddenError(f"a key cannot grant scopes its creator lacks: {', '.join(missing)}")


async def create_key(
    principal: Principal, name: str, scopes: list[str], expires_at: datetime | None, correlation_id: str
) -> dict[str, Any]:
    """A new key for the caller's tenant; the token is in the answer only."""
    _check_grantable(principal, scopes)
    async with unit_of_work(principal.tenant_id) as uow:
        return await issue_key(uow, principal.tenant_id, name, scopes, correlation_id, expires_at)


async def get_key(tenant_id: UUID, key_id: UUID) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        record = await store.get_key(conn, key_id)
    if record is None:
        raise NotFoundError(f"no API key {key_id}")
    return record


async def rotate_key(principal: Principal, key_id: UUID, grace_s: int, correlation_id: str) -> dict[str, Any]:
    """A new key with the same name and scopes; the old one keeps working for `grace_s` seconds, then expires."""
    async with unit_of_work(principal.tenant_id) as uow:
        old = await store.get_key(uow.conn, key_id, for_update=True)
        if old is None:
            raise NotFoundError(f"no API key {key_id}")
        if old["revoked_at"] is not None or (old["expires_at"] is not None and old["expires_at"] <= datetime.now(UTC)):
            raise ConflictError("a revoked or expired key cannot be rotated; create a new one")
        _check_grantable(principal, list(old["scopes"]))
        ends = datetime.now(UTC) + timedelta(seconds=grace_s)
        if old["expires_at"] is not None:
            ends = min(ends, old["expires_at"])
        await store.end_key(uow.conn, key_id, "expires_at", ends)
        issued = await issue_key(
            uow, principal.tenant_id, old["name"], list(old["scopes"]), correlation_id, old["expires_at"]
        )
        await uow.emit(
            ApiKeyRotated(
                tenant_id=principal.tenant_id,
                correlation_id=correlation_id,
                key_id=key_id,
                new_key_id=issued["key_id"],
                old_key_expires_at=ends,
            )
        )
    return {**issued, "previous_key_expires_at": ends}


async def revoke_key(principal: Principal, key_id: UUID, correlation_id: str) -> dict[str, Any]:
    """Revoke at once (the HTTP API may still admit it for the authorizer cache's TTL)."""
    async with unit_of_work(principal.tenant_id) as uow:
        current = await store.get_key(uow.conn, key_id, for_update=True)
        if current is None:
            raise NotFoundError(f"no API key {key_id}")
        if current["revoked_at"] is not None:
            return current
        revoked = await store.end_key(uow.conn, key_id, "revoked_at", None)
        await uow.emit(ApiKeyRevoked(tenant_id=principal.tenant_id, correlation_id=correlation_id, key_id=key_id))
    return revoked
