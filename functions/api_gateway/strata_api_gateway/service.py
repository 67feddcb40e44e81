"""L09's logic: tenants and API keys."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

from strata.auth import ADMIN_SCOPE, mint_api_key
from strata.events.entities import ApiKeyCreated, TenantCreated
from strata.events.outbox import unit_of_work
from strata_api_gateway import store


class BootstrapRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_name: str = Field(min_length=1, max_length=200)
    key_name: str = Field(default="bootstrap", min_length=1, max_length=200)
    scopes: list[str] = Field(default_factory=lambda: [ADMIN_SCOPE], min_length=1, max_length=50)


async def bootstrap(args: dict[str, Any]) -> dict[str, Any]:
    """Operator command: ensure a tenant exists and mint a key for it (the key is returned once)."""
    request = BootstrapRequest.model_validate(args)
    correlation_id = f"bootstrap-{uuid4()}"
    key = mint_api_key()
    key_id = uuid4()
    async with unit_of_work() as uow:
        tenant_id = await store.tenant_by_name(uow.conn, request.tenant_name)
        if tenant_id is None:
            tenant_id = uuid4()
            await store.insert_tenant(uow.conn, tenant_id, request.tenant_name)
            await uow.emit(TenantCreated(tenant_id=tenant_id, correlation_id=correlation_id, name=request.tenant_name))
        record = await store.insert_key(uow.conn, key_id, tenant_id, request.key_name, key, request.scopes)
        await uow.emit(
            ApiKeyCreated(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                key_id=key_id,
                prefix=key.prefix,
                scopes=request.scopes,
            )
        )
    return {
        "tenant_id": str(tenant_id),
        "api_key": key.token,
        "key_id": str(key_id),
        "prefix": record["prefix"],
        "scopes": record["scopes"],
    }
