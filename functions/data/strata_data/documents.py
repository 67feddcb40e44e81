"""L01's documents: versioned (every write keeps a full copy), full-text searchable, soft deleted, read cached."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from strata import cache, db
from strata.errors import NotFoundError, PayloadTooLargeError
from strata.etags import check_version
from strata.events.entities import DocumentCreated, DocumentDeleted, DocumentUpdated
from strata.events.outbox import unit_of_work
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import soft_delete_row, update_row

if TYPE_CHECKING:  # asyncpg itself loads with the pool, not at cold start
    import asyncpg

# lists leave out `content` (up to a megabyte each) to keep pages small; fetch_page adds created_at
SUMMARY_COLUMNS = "document_id, title, content_type, metadata, version, updated_at, deleted_at"
COLUMNS = "document_id, title, content, content_type, metadata, version, created_at, updated_at, deleted_at"
UPDATABLE = ("title", "content", "content_type", "metadata")


def _cache_key(tenant_id: UUID, document_id: UUID) -> str:
    return f"strata:{tenant_id}:document:{document_id}"


@asynccontextmanager
async def _indexable() -> AsyncIterator[None]:
    """Postgres caps a tsvector at 1 MiB: content with too many distinct words cannot be indexed (413, not 500)."""
    from asyncpg import ProgramLimitExceededError

    try:
        yield
    except ProgramLimitExceededError as exc:
        raise PayloadTooLargeError("the document has too many distinct words to index for search") from exc


# --- SQL ---------------------------------------------------------------------------------------------------------


async def _select(conn: asyncpg.Connection, document_id: UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM documents WHERE document_id = $1 AND deleted_at IS NULL{lock}",  # noqa: S608
        document_id,
    )
    return dict(row) if row else None


async def _insert_version(conn: asyncpg.Connection, tenant_id: UUID, document: dict[str, Any]) -> None:
    """Keep a full copy of `document` as it is at its current version."""
    await conn.execute(
        """INSERT INTO document_versions (document_id, version, tenant_id, title, content, metadata)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        document["document_id"],
        document["version"],
        tenant_id,
        document["title"],
        document["content"],
        document["metadata"],
    )


async def _insert(conn: asyncpg.Connection, tenant_id: UUID, document: dict[str, Any]) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""INSERT INTO documents (document_id, tenant_id, title, content, content_type, metadata)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}""",  # noqa: S608 - a constant column list
        document["document_id"],
        tenant_id,
        document["title"],
        document["content"],
        document["content_type"],
        document["metadata"],
    )
    assert row is not None
    return dict(row)


async def _update(conn: asyncpg.Connection, document_id: UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` (columns from UPDATABLE only) and bump the version."""
    return await update_row(conn, "documents", "document_id", document_id, changes, COLUMNS)


# --- logic -------------------------------------------------------------------------------------------------------


async def create_document(tenant_id: UUID, fields: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    """Insert the document and its version 1 in one transaction, with DocumentCreated."""
    document_id = uuid4()
    document = {"document_id": document_id, "content_type": "text/plain", "metadata": {}, **fields}
    async with _indexable(), unit_of_work(tenant_id) as uow:
        created = await _insert(uow.conn, tenant_id, document)
        await _insert_version(uow.conn, tenant_id, created)
        await uow.emit(
            DocumentCreated(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                document_id=document_id,
                title=created["title"],
                version=created["version"],
            )
        )
    return created


async def get_document(tenant_id: UUID, document_id: UUID) -> dict[str, Any]:
    async def load() -> dict[str, Any] | None:
        async with db.transaction(tenant_id) as conn:
            return await _select(conn, document_id)

    document: dict[str, Any] | None = await cache.read_through(_cache_key(tenant_id, document_id), load)
    if document is None:
        raise NotFoundError(f"no document {document_id}")
    return document


async def list_documents(
    tenant_id: UUID, page: PageRequest, q: str | None, content_type: str | None, include_deleted: bool
) -> tuple[list[dict[str, Any]], str | None]:
    where = (
        Where(tenant_id)
        .add_if(q, "search @@ websearch_to_tsquery('english', {})")
        .add_if(content_type, "content_type = {}")
    )
    if not include_deleted:
        where.add("deleted_at IS NULL")
    return await fetch_page("documents", SUMMARY_COLUMNS, "document_id", where, page)


async def update_document(
    tenant_id: UUID, document_id: UUID, changes: dict[str, Any], expected_version: int | None, correlation_id: str
) -> dict[str, Any]:
    """Apply the changed fields as a new version (kept in document_versions); a no-op returns the current one."""
    async with _indexable(), unit_of_work(tenant_id) as uow:
        current = await _select(uow.conn, document_id, for_update=True)
        if current is None:
            raise NotFoundError(f"no document {document_id}")
        check_version(expected_version, current["version"])
        changed = {k: v for k, v in changes.items() if k in UPDATABLE and v != current[k]}
        if not changed:
            return current
        updated = await _update(uow.conn, document_id, changed)
        await _insert_version(uow.conn, tenant_id, updated)
        await uow.emit(
            DocumentUpdated(
                tenant_id=tenant_id, correlation_id=correlation_id, document_id=document_id, version=updated["version"]
            )
        )
    await cache.invalidate(_cache_key(tenant_id, document_id))
    return updated


async def delete_document(
    tenant_id: UUID, document_id: UUID, expected_version: int | None, correlation_id: str
) -> None:
    """Soft delete: the row and its versions stay; reads, version reads and lists no longer show it."""
    async with unit_of_work(tenant_id) as uow:
        current = await _select(uow.conn, document_id, for_update=True)
        if current is None:
            raise NotFoundError(f"no document {document_id}")
        check_version(expected_version, current["version"])
        await soft_delete_row(uow.conn, "documents", "document_id", document_id)
        await uow.emit(DocumentDeleted(tenant_id=tenant_id, correlation_id=correlation_id, document_id=document_id))
    await cache.invalidate(_cache_key(tenant_id, document_id))


async def _require_live(conn: asyncpg.Connection, document_id: UUID) -> None:
    found = await conn.fetchval("SELECT 1 FROM documents WHERE document_id = $1 AND deleted_at IS NULL", document_id)
    if found is None:
        raise NotFoundError(f"no document {document_id}")


async def list_versions(tenant_id: UUID, document_id: UUID, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` of the document's versions below `before`, newest first, without their content."""
    async with db.transaction(tenant_id) as conn:
        await _require_live(conn, document_id)
        rows = await conn.fetch(
            "SELECT version, title, created_at FROM document_versions "
            "WHERE document_id = $1 AND ($2::integer IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
            document_id,
            before,
            limit,
        )
    return [dict(r) for r in rows]


async def get_version(tenant_id: UUID, document_id: UUID, version: int) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        await _require_live(conn, document_id)
        row = await conn.fetchrow(
            "SELECT document_id, version, title, content, metadata, created_at FROM document_versions "
            "WHERE document_id = $1 AND version = $2",
            document_id,
            version,
        )
    if row is None:
        raise NotFoundError(f"document {document_id} has no version {version}")
    return dict(row)
