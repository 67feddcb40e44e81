"""A tenant's data in one layer: counted and erased by the layer that owns it, for the tenant-deletion saga (L11).

Each layer names the tables it owns (children before parents) when it builds its app; this module gives it
`GET /v1/tenant-data/<layer>` (rows per table; the layer's name in kebab case) and `DELETE` on it (every row of
the caller's tenant in those tables, and the outbox rows the layer produced for it, in one transaction), both only
for credentials
holding `platform:tenant-purge`, which only the saga's service tokens carry. A layer with data outside Postgres (S3
objects, schedules in EventBridge Scheduler) adds an `erase_elsewhere` hook, run before the rows go, so a failure
there leaves the rows (and the saga retries).

Rows are erased with the platform's own connection and an explicit `tenant_id` condition: some tables (the audit
log, the event archive) deny DELETE to the application role on purpose, and erasing a tenant is the one time they
must give way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from strata.auth import Principal
from strata.scopes import TENANT_PURGE

EraseElsewhere = Callable[[UUID], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class TenantTables:
    """What a layer holds for a tenant: its tables in deletion order (children first) and other stores."""

    tables: Sequence[str]
    erase_elsewhere: str | EraseElsewhere | None = None  # "module:function" (imported when used) or the callable


class TenantData(BaseModel):
    layer: str
    tenant_id: UUID
    rows: dict[str, int] = Field(description="Rows of the tenant per table (after the erasure, for DELETE)")
    erased: dict[str, int] = Field(default_factory=dict, description="Rows (or objects) erased, per table or store")
    remaining: int = Field(description="Rows of the tenant left in the layer's tables (0 once erased)")


def _outbox_source(layer: str) -> str:
    return f"strata.{layer}"


async def count_rows(layer: str, owned: TenantTables, tenant_id: UUID) -> dict[str, int]:
    """Rows of `tenant_id` in each of the layer's tables and in its outbox."""
    from strata import db

    # table names come from the layer's own code, never from a request
    selects = [f"SELECT {n}, count(*) FROM {table} WHERE tenant_id = $1" for n, table in enumerate(owned.tables)]  # noqa: S608
    selects.append(f"SELECT {len(owned.tables)}, count(*) FROM outbox WHERE tenant_id = $1 AND source = $2")  # noqa: S608
    async with db.transaction() as conn:
        rows = await conn.fetch(" UNION ALL ".join(selects), tenant_id, _outbox_source(layer))
    names = [*owned.tables, "outbox"]
    return {names[row[0]]: int(row[1]) for row in rows}


async def erase(layer: str, owned: TenantTables, tenant_id: UUID) -> dict[str, int]:
    """Erase everything `layer` holds for `tenant_id`; returns what went, per table (and per other store)."""
    from strata import db
    from strata.handler import resolve

    erased: dict[str, int] = {}
    if owned.erase_elsewhere is not None:
        erased.update(await resolve(owned.erase_elsewhere)(tenant_id))
    async with db.transaction() as conn:
        for table in owned.tables:
            status = await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", tenant_id)  # noqa: S608
            erased[table] = int(status.rsplit(" ", 1)[-1])
        status = await conn.execute(
            "DELETE FROM outbox WHERE tenant_id = $1 AND source = $2", tenant_id, _outbox_source(layer)
        )
        erased["outbox"] = int(status.rsplit(" ", 1)[-1])
    return erased


def tenant_data_path(layer: str) -> str:
    """`/v1/tenant-data/<layer>` (the layer's name in kebab case, as every versioned path is)."""
    return f"/v1/tenant-data/{layer.replace('_', '-')}"


def tenant_data_router(layer: str, owned: TenantTables) -> APIRouter:
    """The layer's two tenant-data routes (see the module's docstring)."""
    from strata.web import require_scope

    router = APIRouter(tags=["tenant data"])
    path = tenant_data_path(layer)
    purger = Depends(require_scope(TENANT_PURGE))

    def answer(tenant_id: UUID, rows: dict[str, int], erased: dict[str, int] | None = None) -> dict[str, Any]:
        remaining = sum(rows.values())
        return {"layer": layer, "tenant_id": tenant_id, "rows": rows, "erased": erased or {}, "remaining": remaining}

    @router.get(
        path,
        response_model=TenantData,
        summary=f"Rows the caller's tenant holds in {layer}'s tables (the tenant-deletion saga's check).",
        operation_id=f"count_tenant_data_{layer}",
    )
    async def count(principal: Principal = purger) -> dict[str, Any]:
        """Rows the caller's tenant holds in the layer's tables (the tenant-deletion saga's check)."""
        return answer(principal.tenant_id, await count_rows(layer, owned, principal.tenant_id))

    @router.delete(
        path,
        response_model=TenantData,
        summary=f"Erase every row the caller's tenant holds in {layer} (the tenant-deletion saga's step).",
        operation_id=f"erase_tenant_data_{layer}",
    )
    async def purge(principal: Principal = purger) -> dict[str, Any]:
        """Erase every row the caller's tenant holds in the layer (the tenant-deletion saga's step)."""
        erased = await erase(layer, owned, principal.tenant_id)
        return answer(principal.tenant_id, await count_rows(layer, owned, principal.tenant_id), erased)

    return router
