"""L01's namespaced configuration: versioned JSON values per (namespace, key), a history, soft delete, a read cache."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from strata import cache, db
from strata.errors import ConflictError, NotFoundError, PreconditionFailedError
from strata.etags import check_version, etag
from strata.events.entities import ConfigurationChanged
from strata.events.outbox import unit_of_work
from strata.pagination import PageRequest, Where, fetch_page

if TYPE_CHECKING:  # asyncpg itself loads with the pool, not at cold start
    import asyncpg

MAX_VALUE_BYTES = 65_536
NAMESPACE_PATTERN = r"^[a-z][a-z0-9_.-]{0,99}$"
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
COLUMNS = "configuration_id, namespace, key, value, version, updated_at"
VERSION_COLUMNS = "version, value, deleted, created_at"


def dump_json(value: Any, limit: int = MAX_VALUE_BYTES) -> str:
    """`value` as compact JSON text Postgres accepts (no NaN, no NUL characters), at most `limit` bytes;
    ValueError otherwise (a validation error at the API)."""
    pending = [value]
    while pending:  # iterative: a deeply nested value must not exhaust the interpreter's stack
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            raise ValueError("JSON text must not contain NUL characters")
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if len(text.encode()) > limit:
        raise ValueError(f"the serialized value exceeds {limit} bytes")
    return text


def _cache_key(tenant_id: UUID, namespace: str, key: str) -> str:
    return f"strata:{tenant_id}:config:{namespace}:{key}"


async def _live(
    conn: asyncpg.Connection, namespace: str, key: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS}, created_at FROM configurations "  # noqa: S608 - constants and $n only
        f"WHERE namespace = $1 AND key = $2 AND deleted_at IS NULL{lock}",
        namespace,
        key,
    )
    return dict(row) if row else None


async def _record_version(conn: asyncpg.Connection, configuration_id: UUID, *, deleted: bool = False) -> None:
    """Copy the entry as it now is into its history (same transaction as the change)."""
    await conn.execute(
        """INSERT INTO configuration_versions (configuration_id, version, tenant_id, value, deleted)
           SELECT configuration_id, version, tenant_id, value, $2 FROM configurations WHERE configuration_id = $1""",
        configuration_id,
        deleted,
    )


async def put(
    tenant_id: UUID,
    namespace: str,
    key: str,
    value: Any,
    *,
    expected_version: int | None,
    must_exist: bool,
    create_only: bool,
    correlation_id: str,
) -> tuple[dict[str, Any], bool]:
    """Create or replace the live entry; returns it and whether it was created. `must_exist` (any If-Match) and
    `create_only` (If-None-Match: *) are preconditions: 412 when they do not hold."""
    from asyncpg import UniqueViolationError

    text = dump_json(value)
    try:
        async with unit_of_work(tenant_id) as uow:
            current = await _live(uow.conn, namespace, key, for_update=True)
            if current is None:
                if must_exist:
                    raise PreconditionFailedError(f"no configuration {namespace}/{key} to match If-Match against")
                row = await uow.conn.fetchrow(
                    f"""INSERT INTO configurations (configuration_id, tenant_id, namespace, key, value)
                        VALUES ($1, $2, $3, $4, $5::text::jsonb) RETURNING {COLUMNS}, created_at""",  # noqa: S608
                    uuid4(),
                    tenant_id,
                    namespace,
                    key,
                    text,
                )
            else:
                if create_only:
                    raise PreconditionFailedError(
                        f"configuration {namespace}/{key} already exists (If-None-Match: *)",
                        current_etag=etag(current["version"]),
                    )
                check_version(expected_version, current["version"])
                row = await uow.conn.fetchrow(
                    "UPDATE configurations SET value = $2::text::jsonb, version = version + 1, "  # noqa: S608
                    f"updated_at = now() WHERE configuration_id = $1 RETURNING {COLUMNS}, created_at",
                    current["configuration_id"],
                    text,
                )
            assert row is not None
            entry = dict(row)
            await _record_version(uow.conn, entry["configuration_id"])
            await uow.emit(
                ConfigurationChanged(
                    tenant_id=tenant_id,
                    correlation_id=correlation_id,
                    configuration_id=entry["configuration_id"],
                    namespace=namespace,
                    key=key,
                    version=entry["version"],
                )
            )
    except UniqueViolationError as exc:  # another request created the same key between our read and insert
        if create_only:
            raise PreconditionFailedError(f"configuration {namespace}/{key} already exists (If-None-Match: *)") from exc
        raise ConflictError(f"configuration {namespace}/{key} was created concurrently: read it and retry") from exc
    await cache.invalidate(_cache_key(tenant_id, namespace, key))
    return entry, current is None


async def get(tenant_id: UUID, namespace: str, key: str) -> dict[str, Any]:
    async def load() -> dict[str, Any] | None:
        async with db.transaction(tenant_id) as conn:
            return await _live(conn, namespace, key)

    entry: dict[str, Any] | None = await cache.read_through(_cache_key(tenant_id, namespace, key), load)
    if entry is None:
        raise NotFoundError(f"no configuration {namespace}/{key}")
    return entry


async def list_page(
    tenant_id: UUID, page: PageRequest, namespace: str | None, key_prefix: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's live entries, newest first, optionally one namespace's and/or keys starting with a prefix."""
    where = Where(tenant_id).add("deleted_at IS NULL").add_if(namespace, "namespace = {}")
    if key_prefix is not None:
        where.add(
            "key LIKE {} ESCAPE '\\'", key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
    return await fetch_page("configurations", COLUMNS, "configuration_id", where, page)


async def delete(tenant_id: UUID, namespace: str, key: str, expected_version: int | None, correlation_id: str) -> None:
    """Soft delete: the entry leaves reads and lists; its history (ending in a deleted version) stays."""
    async with unit_of_work(tenant_id) as uow:
        current = await _live(uow.conn, namespace, key, for_update=True)
        if current is None:
            raise NotFoundError(f"no configuration {namespace}/{key}")
        check_version(expected_version, current["version"])
        row = await uow.conn.fetchrow(
            "UPDATE configurations SET deleted_at = now(), version = version + 1, "  # noqa: S608
            f"updated_at = now() WHERE configuration_id = $1 RETURNING {COLUMNS}",
            current["configuration_id"],
        )
        assert row is not None
        entry = dict(row)
        await _record_version(uow.conn, entry["configuration_id"], deleted=True)
        await uow.emit(
            ConfigurationChanged(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                configuration_id=entry["configuration_id"],
                namespace=namespace,
                key=key,
                version=entry["version"],
                deleted=True,
            )
        )
    await cache.invalidate(_cache_key(tenant_id, namespace, key))


async def versions(tenant_id: UUID, namespace: str, key: str, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` versions below `before` of the key's latest entry (live, or deleted most recently), newest
    first."""
    async with db.transaction(tenant_id) as conn:
        configuration_id = await conn.fetchval(
            "SELECT configuration_id FROM configurations WHERE namespace = $1 AND key = $2 "
            "ORDER BY deleted_at IS NULL DESC, created_at DESC, configuration_id DESC LIMIT 1",
            namespace,
            key,
        )
        if configuration_id is None:
            raise NotFoundError(f"no configuration {namespace}/{key}")
        rows = await conn.fetch(
            f"SELECT {VERSION_COLUMNS} FROM configuration_versions "  # noqa: S608 - constants and $n only
            "WHERE configuration_id = $1 AND ($2::integer IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
            configuration_id,
            before,
            limit,
        )
    return [dict(r) for r in rows]
