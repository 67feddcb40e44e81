"""Plan templates in Postgres: create, read, list, change (If-Match; a new version), soft delete; and the live
(active) templates a goal is matched against. A template is authored by a person or learned (proposed by L07 from
a good run, with its lineage); a proposed template is matched only once someone makes it active."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from strata import db
from strata.errors import ConflictError, NotFoundError
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import lock_current, soft_delete_row, update_row
from strata_planning import templates

COLUMNS = (
    "template_id, name, description, patterns, parameters, body, origin, lineage, status, used_count, last_used_at,"
    " version, created_at, updated_at"
)
UPDATABLE = ("description", "patterns", "parameters", "body", "status")


async def create(tenant_id: UUID, fields: dict[str, Any]) -> dict[str, Any]:
    from asyncpg import UniqueViolationError

    templates.check(fields)
    try:
        async with db.transaction(tenant_id) as conn:
            row = await conn.fetchrow(
                f"""INSERT INTO plan_templates (template_id, tenant_id, name, description, patterns, parameters, body,
                                            origin, lineage, status)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}""",  # noqa: S608
                uuid4(),
                tenant_id,
                fields["name"],
                fields.get("description", ""),
                fields["patterns"],
                fields["parameters"],
                fields["body"],
                fields.get("origin") or "authored",
                fields.get("lineage") or {},
                fields.get("status") or "active",
            )
    except UniqueViolationError as exc:
        raise ConflictError(f"a plan template named {fields['name']!r} exists") from exc
    assert row is not None
    return dict(row)


async def get(tenant_id: UUID, template_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM plan_templates WHERE template_id = $1 AND deleted_at IS NULL",  # noqa: S608
        template_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no plan template {template_id}")
    return dict(rows[0])


async def list_page(
    tenant_id: UUID, page: PageRequest, status: str | None = None, origin: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add("deleted_at IS NULL").add_if(status, "status = {}").add_if(origin, "origin = {}")
    return await fetch_page("plan_templates", COLUMNS, "template_id", where, page)


async def change(tenant_id: UUID, template_id: UUID, changes: dict[str, Any], expected: int | None) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "plan_templates", "template_id", template_id, expected, "plan template")
        current = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM plan_templates WHERE template_id = $1",  # noqa: S608 - constant columns
            template_id,
        )
        assert current is not None
        changed = {k: v for k, v in changes.items() if k in UPDATABLE and v != current[k]}
        if not changed:
            return dict(current)
        if changed.keys() - {"status"}:  # a change of status alone leaves the plan as it was checked
            templates.check({**dict(current), **changed})
        return await update_row(conn, "plan_templates", "template_id", template_id, changed, COLUMNS)


async def delete(tenant_id: UUID, template_id: UUID, expected: int | None) -> None:
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "plan_templates", "template_id", template_id, expected, "plan template")
        await soft_delete_row(conn, "plan_templates", "template_id", template_id)


async def live(tenant_id: UUID) -> list[dict[str, Any]]:
    """Every live, active template of the tenant (what a goal is matched against; proposed ones wait for a
    person)."""
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM plan_templates WHERE deleted_at IS NULL AND status = 'active' ORDER BY name",  # noqa: S608
        tenant_id=tenant_id,
    )
    return [dict(r) for r in rows]
