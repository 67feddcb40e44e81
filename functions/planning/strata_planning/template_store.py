"""Plan templates in Postgres: create, read, list, change (If-Match; a new version), soft delete; and the live
templates a goal is matched against."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from strata import db
from strata.errors import ConflictError, NotFoundError
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import lock_current, soft_delete_row, update_row
from strata_planning import templates

COLUMNS = "template_id, name, description, patterns, parameters, body, version, created_at, updated_at"
UPDATABLE = ("description", "patterns", "parameters", "body")


async def create(tenant_id: UUID, fields: dict[str, Any]) -> dict[str, Any]:
    from asyncpg import UniqueViolationError

    templates.check(fields)
    try:
        async with db.transaction(tenant_id) as conn:
            row = await conn.fetchrow(
                f"""INSERT INTO plan_templates (template_id, tenant_id, name, description, patterns, parameters, body)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}""",  # noqa: S608 - constant columns
                uuid4(),
                tenant_id,
                fields["name"],
                fields.get("description", ""),
                fields["patterns"],
                fields["parameters"],
                fields["body"],
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


async def list_page(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    return await fetch_page("plan_templates", COLUMNS, "template_id", Where(tenant_id).add("deleted_at IS NULL"), page)


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
        templates.check({**dict(current), **changed})
        return await update_row(conn, "plan_templates", "template_id", template_id, changed, COLUMNS)


async def delete(tenant_id: UUID, template_id: UUID, expected: int | None) -> None:
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "plan_templates", "template_id", template_id, expected, "plan template")
        await soft_delete_row(conn, "plan_templates", "template_id", template_id)


async def live(tenant_id: UUID) -> list[dict[str, Any]]:
    """Every live template of the tenant (what a goal is matched against)."""
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM plan_templates WHERE deleted_at IS NULL ORDER BY name",  # noqa: S608
        tenant_id=tenant_id,
    )
    return [dict(r) for r in rows]
