"""Tenants: the operator creates, lists, suspends and reactivates them (scope `platform:admin`); a tenant reads its
own record and changes its settings (the browser origins allowed to call the API)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from strata import db, ratelimit
from strata.auth import ADMIN_SCOPE
from strata.errors import ConflictError, InvalidInputError, NotFoundError
from strata.etags import check_version
from strata.events.entities import TenantCreated, TenantUpdated
from strata.events.outbox import unit_of_work
from strata.pagination import PageRequest
from strata_api_gateway import store
from strata_api_gateway.keys import issue_key

MAX_ORIGINS = 20


def check_origins(origins: list[str]) -> list[str]:
    """`*` or exact origins (`scheme://host[:port]`, no path), deduplicated in order; else 422 naming the bad ones."""
    bad = []
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            bad.append(origin)
    if bad:
        raise InvalidInputError("CORS origins must be '*' or scheme://host[:port] with nothing after it", origins=bad)
    return list(dict.fromkeys(o.rstrip("/") for o in origins))


def check_tier(tier: str) -> str:
    if tier not in ratelimit.tiers():
        raise InvalidInputError(f"no rate-limit tier {tier!r}; known: {', '.join(sorted(ratelimit.tiers()))}")
    return tier


async def create_tenant(name: str, tier: str, key_name: str, correlation_id: str) -> dict[str, Any]:
    """A tenant and its first admin key (the secret is in this answer only)."""
    check_tier(tier)
    tenant_id = uuid4()
    async with unit_of_work() as uow:
        if await store.tenant_by_name(uow.conn, name) is not None:
            raise ConflictError(f"a tenant named {name!r} exists")
        await store.insert_tenant(uow.conn, tenant_id, name, tier)
        await uow.emit(TenantCreated(tenant_id=tenant_id, correlation_id=correlation_id, name=name))
        admin_key = await issue_key(uow, tenant_id, key_name, [ADMIN_SCOPE], correlation_id)
        tenant = await store.get_tenant(uow.conn, tenant_id)
    assert tenant is not None
    return {**tenant, "admin_key": admin_key}


async def get_tenant(tenant_id: UUID, *, own: bool) -> dict[str, Any]:
    """A tenant's record: the caller's own (read under its row-level security), or any (the operator's)."""
    async with db.transaction(tenant_id if own else None) as conn:
        tenant = await store.get_tenant(conn, tenant_id)
    if tenant is None:
        raise NotFoundError(f"no tenant {tenant_id}")
    return tenant


async def list_tenants(page: PageRequest, status: str | None) -> tuple[list[dict[str, Any]], str | None]:
    return await store.list_tenants(page, status)


async def update_tenant(
    tenant_id: UUID, changes: dict[str, Any], expected: int | None, correlation_id: str, *, own: bool
) -> dict[str, Any]:
    """Apply `changes` (status and tier are the operator's; cors_origins the tenant's) at the expected version."""
    if "cors_origins" in changes:
        changes["cors_origins"] = check_origins(changes["cors_origins"])
    if "tier" in changes:
        check_tier(changes["tier"])
    async with unit_of_work(tenant_id if own else None) as uow:
        current = await store.get_tenant(uow.conn, tenant_id, for_update=True)
        if current is None:
            raise NotFoundError(f"no tenant {tenant_id}")
        check_version(expected, current["version"])
        changed = [k for k, v in changes.items() if current[k] != v]
        if not changed:
            return current
        updated = await store.update_tenant(uow.conn, tenant_id, {k: changes[k] for k in changed})
        await uow.emit(
            TenantUpdated(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                version=updated["version"],
                changed=changed,
                status=updated["status"],
                tier=updated["tier"],
            )
        )
    return updated
