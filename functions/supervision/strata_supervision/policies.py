"""A tenant's Cedar policies: created, changed, deleted and rolled back through the API, each change a new version
(kept whole in `policy_versions`), checked against the schema before it is stored, written to the audit log, and
moving the tenant's policy revision on (what decisions and every cache of them are keyed by)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import cache, db
from strata.decisions import revision_key
from strata.errors import ConflictError, InvalidInputError, NotFoundError
from strata.etags import check_version
from strata.pagination import PageRequest, Where, fetch_page, page_of, position_before
from strata_supervision import audit, engine

logger = Logger(child=True)
COLUMNS = (
    "policy_id, name, description, cedar, statements, enabled, version, changed_by, created_at, updated_at, deleted_at"
)
VERSION_COLUMNS = "policy_id, version, change, name, description, cedar, statements, enabled, changed_by, created_at"


async def bump_revision(conn: Any) -> int:
    """Move the tenant's policy revision on (in the caller's transaction); the new revision."""
    revision: int = await conn.fetchval(
        """INSERT INTO policy_revisions (tenant_id, revision) VALUES (strata_tenant(), 1)
           ON CONFLICT (tenant_id) DO UPDATE SET revision = policy_revisions.revision + 1, updated_at = now()
           RETURNING revision"""
    )
    return revision


async def publish_revision(tenant_id: UUID, revision: int) -> None:
    """After commit: tell the callers' decision caches (a lost write leaves them to their short TTL)."""
    try:
        await cache.get_redis().set(revision_key(tenant_id), revision)
    except Exception as exc:
        logger.warning("the policy revision could not be published", extra={"error": str(exc)})


def _view(row: Any) -> dict[str, Any]:
    return {**dict(row), "statement_count": len(row["statements"])}


async def _write(
    tenant_id: UUID, by: str, change: str, policy_id: UUID, expected: int | None, values: dict[str, Any] | None
) -> dict[str, Any]:
    """Apply one change to a policy and record it as a version (one transaction with its audit entry)."""
    async with db.transaction(tenant_id) as conn:
        if change == "created":
            assert values is not None
            version = 1
        else:
            current = await conn.fetchrow(
                f"SELECT {COLUMNS} FROM policies WHERE policy_id = $1 FOR UPDATE",  # noqa: S608 - constant columns
                policy_id,
            )
            if current is None or (current["deleted_at"] is not None and change != "rolled_back"):
                raise NotFoundError(f"no policy {policy_id}")
            check_version(expected, current["version"])
            version = current["version"] + 1
            values = {**dict(current), **(values or {})}
        try:
            row = await conn.fetchrow(
                f"""INSERT INTO policies (tenant_id, policy_id, name, description, cedar, statements, enabled, version,
                                          changed_by, deleted_at)
                    VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END)
                    ON CONFLICT (policy_id) DO UPDATE SET name = excluded.name,
                        description = excluded.description, cedar = excluded.cedar, statements = excluded.statements,
                        enabled = excluded.enabled, version = excluded.version, changed_by = excluded.changed_by,
                        updated_at = now(), deleted_at = excluded.deleted_at
                    RETURNING {COLUMNS}""",  # noqa: S608 - constant columns
                policy_id,
                values["name"],
                values["description"],
                values["cedar"],
                values["statements"],
                values["enabled"],
                version,
                by,
                change == "deleted",
            )
        except Exception as exc:
            if "policies_name" in str(exc):
                raise ConflictError(f"a policy named {values['name']!r} exists already") from exc
            raise
        await conn.execute(
            f"""INSERT INTO policy_versions (tenant_id, {VERSION_COLUMNS})
                SELECT tenant_id, policy_id, version, $2, name, description, cedar, statements, enabled, changed_by,
                       updated_at
                FROM policies WHERE policy_id = $1""",  # noqa: S608 - constant columns
            policy_id,
            change,
        )
        revision = await bump_revision(conn)
        await audit.append(
            conn,
            tenant_id,
            f"policy.{change}",
            by,
            {
                "policy_id": str(policy_id),
                "name": row["name"],
                "version": version,
                "revision": revision,
                "enabled": row["enabled"],
                "cedar": row["cedar"],
            },
        )
    await publish_revision(tenant_id, revision)
    return _view(row)


async def create(tenant_id: UUID, by: str, name: str, description: str, cedar: str, enabled: bool) -> dict[str, Any]:
    statements = engine.parse_statements(cedar)
    values = {"name": name, "description": description, "cedar": cedar, "statements": statements, "enabled": enabled}
    return await _write(tenant_id, by, "created", uuid4(), None, values)


async def update(
    tenant_id: UUID, by: str, policy_id: UUID, expected: int | None, changes: dict[str, Any]
) -> dict[str, Any]:
    if "cedar" in changes:
        changes["statements"] = engine.parse_statements(changes["cedar"])
    return await _write(tenant_id, by, "updated", policy_id, expected, changes)


async def delete(tenant_id: UUID, by: str, policy_id: UUID, expected: int | None) -> None:
    await _write(tenant_id, by, "deleted", policy_id, expected, None)


async def rollback(tenant_id: UUID, by: str, policy_id: UUID, to_version: int, expected: int | None) -> dict[str, Any]:
    """A new version with the content of an earlier one (a deleted policy comes back)."""
    old = await db.fetch(
        f"SELECT {VERSION_COLUMNS} FROM policy_versions WHERE policy_id = $1 AND version = $2",  # noqa: S608
        policy_id,
        to_version,
        tenant_id=tenant_id,
    )
    if not old:
        raise NotFoundError(f"policy {policy_id} has no version {to_version}")
    if old[0]["change"] == "deleted":
        raise InvalidInputError(f"version {to_version} is the policy's deletion; roll back to a version before it")
    content = {k: old[0][k] for k in ("name", "description", "cedar", "statements", "enabled")}
    return await _write(tenant_id, by, "rolled_back", policy_id, expected, content)


async def get(tenant_id: UUID, policy_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM policies WHERE policy_id = $1 AND deleted_at IS NULL",  # noqa: S608
        policy_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no policy {policy_id}")
    return _view(rows[0])


async def list_page(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add("deleted_at IS NULL")
    items, cursor = await fetch_page("policies", COLUMNS, "policy_id", where, page)
    return [_view(i) for i in items], cursor


async def versions(tenant_id: UUID, policy_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    before = position_before(page)
    async with db.transaction(tenant_id) as conn:
        if not await conn.fetchval("SELECT true FROM policies WHERE policy_id = $1", policy_id):
            raise NotFoundError(f"no policy {policy_id}")
        rows = await conn.fetch(
            f"SELECT {VERSION_COLUMNS} FROM policy_versions WHERE policy_id = $1 "  # noqa: S608 - constant columns
            "AND ($2::int IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
            policy_id,
            before,
            page.limit + 1,
        )
    return page_of([{**dict(r), "statement_count": len(r["statements"])} for r in rows], page)


async def active(conn: Any) -> list[dict[str, Any]]:
    """The tenant's enabled policies, in the order they join the policy set."""
    rows = await conn.fetch(
        "SELECT policy_id, name, version, cedar, statements FROM policies WHERE enabled AND deleted_at IS NULL "
        "ORDER BY created_at, policy_id"
    )
    return [dict(r) for r in rows]


def validate(cedar: str) -> dict[str, Any]:
    """Whether a policy text would be accepted, with every problem found (nothing is stored)."""
    try:
        statements = engine.parse_statements(cedar)
    except InvalidInputError as exc:
        errors = exc.extra.get("errors") or [exc.detail]
        return {"valid": False, "errors": errors, "statements": []}
    return {"valid": True, "errors": [], "statements": statements}
