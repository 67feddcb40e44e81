"""The migration runner against a real Postgres: idempotent, recorded, atomic per migration."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from strata.db import TENANT_SCOPE
from strata.migrations import MigrationError, apply_migrations, discover

SCHEMA_QUERY = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, column_name
"""
INDEX_QUERY = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"


@pytest.fixture
async def fresh_db(pg_server: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new, empty database of its own."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(pg_server.replace("/postgres?", f"/{name}?"))
    try:
        yield conn
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()


async def _schema(conn: asyncpg.Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return ([tuple(r) for r in await conn.fetch(SCHEMA_QUERY)], [tuple(r) for r in await conn.fetch(INDEX_QUERY)])


async def test_applying_twice_leaves_the_schema_unchanged(fresh_db: asyncpg.Connection) -> None:
    # GIVEN an empty database
    # WHEN the migrations are applied twice
    first = await apply_migrations(fresh_db)
    schema_after_first = await _schema(fresh_db)
    second = await apply_migrations(fresh_db)

    # THEN the first run applied every shipped migration, the second nothing, and the schema is identical
    assert first == [f"{m.version:04d}_{m.name}" for m in discover()]
    assert second == []
    assert await _schema(fresh_db) == schema_after_first
    recorded = await fresh_db.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["checksum"]) for r in recorded] == [(m.version, m.checksum) for m in discover()]
    assert "agents" in {row[0] for row in schema_after_first[0]}


async def test_a_failed_migration_rolls_back_entirely(fresh_db: asyncpg.Connection, tmp_path: Path) -> None:
    # GIVEN a good migration and a second one that creates a table, then fails
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE kept (id int PRIMARY KEY);")
    (tmp_path / "0002_bad.sql").write_text(
        "CREATE TABLE half_done (id int);\nINSERT INTO kept VALUES (1);\nSELECT * FROM no_such_table;"
    )

    # WHEN they are applied
    with pytest.raises(MigrationError, match="0002_bad failed and was rolled back"):
        await apply_migrations(fresh_db, tmp_path)

    # THEN the good one is recorded, and nothing of the bad one remains: no table, no row, no record
    assert await fresh_db.fetchval("SELECT to_regclass('half_done')") is None
    assert await fresh_db.fetchval("SELECT count(*) FROM kept") == 0
    assert [r["version"] for r in await fresh_db.fetch("SELECT version FROM schema_migrations")] == [1]


async def test_an_applied_migration_edited_afterwards_is_refused(fresh_db: asyncpg.Connection, tmp_path: Path) -> None:
    migration = tmp_path / "0001_first.sql"
    migration.write_text("CREATE TABLE first (id int);")
    await apply_migrations(fresh_db, tmp_path)

    migration.write_text("CREATE TABLE first (id bigint);")

    with pytest.raises(MigrationError, match="edited after it was applied"):
        await apply_migrations(fresh_db, tmp_path)


async def test_row_level_security_confines_a_tenant_scoped_transaction(fresh_db: asyncpg.Connection) -> None:
    # GIVEN the schema and an agent for each of two tenants, written as the owner
    await apply_migrations(fresh_db)
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    for tenant in (tenant_a, tenant_b):
        await fresh_db.execute(
            "INSERT INTO agents (agent_id, tenant_id, name, did) VALUES ($1, $2, 'same-name', $3)",
            uuid.uuid4(),
            tenant,
            f"did:test:{uuid.uuid4()}",
        )

    # WHEN tenant A's transaction reads without any WHERE clause, and tries to write a row for tenant B
    async with fresh_db.transaction():
        await fresh_db.execute(TENANT_SCOPE, str(tenant_a))
        visible = {r["tenant_id"] for r in await fresh_db.fetch("SELECT tenant_id FROM agents")}
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await fresh_db.execute(
                "INSERT INTO agents (agent_id, tenant_id, name, did) VALUES ($1, $2, 'intruder', 'did:test:x')",
                uuid.uuid4(),
                tenant_b,
            )

    # THEN only tenant A's rows were visible, and the role and tenant ended with the transaction
    assert visible == {tenant_a}
    assert await fresh_db.fetchval("SELECT count(*) FROM agents") == 2


async def test_every_tenant_table_has_row_level_security(fresh_db: asyncpg.Connection) -> None:
    await apply_migrations(fresh_db)

    unprotected = await fresh_db.fetch(
        """SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             AND (NOT c.relrowsecurity OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))"""
    )

    assert [r["relname"] for r in unprotected] == []
    # partitions bypass their parent's policy when queried directly: the application role must not reach them
    reachable = await fresh_db.fetch(
        """SELECT c.relname FROM pg_class c WHERE c.relispartition AND c.relkind IN ('r', 'p')
             AND c.relnamespace = 'public'::regnamespace
             AND has_table_privilege('strata_app', c.oid, 'SELECT, INSERT, UPDATE, DELETE')"""
    )
    assert [r["relname"] for r in reachable] == []


async def test_event_log_partitions_are_monthly_and_take_in_early_arrivals(fresh_db: asyncpg.Connection) -> None:
    # GIVEN the schema (which creates this month's and the next two months' partitions)
    await apply_migrations(fresh_db)
    partitions = {
        r["relname"]
        for r in await fresh_db.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'event_log'::regclass"
        )
    }
    assert len(partitions - {"event_log_default"}) >= 3

    # WHEN an event from a month without a partition lands in the default partition, and maintenance runs
    event_id = uuid.uuid4()
    await fresh_db.execute(
        "INSERT INTO event_log (event_id, tenant_id, source, detail_type, correlation_id, occurred_at, detail) "
        "VALUES ($1, $2, 'strata.data', 'AgentDeleted', 'c', '2025-03-14T09:00:00Z', '{}')",
        event_id,
        uuid.uuid4(),
    )
    created = await fresh_db.fetchval("SELECT strata_ensure_event_log_partitions(2)")

    # THEN its month got a partition, the row moved there, and the log still returns it
    assert created >= 1
    assert await fresh_db.fetchval("SELECT count(*) FROM event_log_2025_03 WHERE event_id = $1", event_id) == 1
    assert await fresh_db.fetchval("SELECT count(*) FROM event_log_default") == 0
    assert await fresh_db.fetchval("SELECT count(*) FROM event_log WHERE event_id = $1", event_id) == 1


async def test_the_application_role_cannot_rewrite_the_event_log(fresh_db: asyncpg.Connection) -> None:
    await apply_migrations(fresh_db)
    tenant = uuid.uuid4()

    async with fresh_db.transaction():
        await fresh_db.execute(TENANT_SCOPE, str(tenant))
        await fresh_db.execute(
            "INSERT INTO event_log (event_id, tenant_id, source, detail_type, correlation_id, occurred_at, detail) "
            "VALUES ($1, $2, 'strata.data', 'AgentDeleted', 'c', now(), '{}')",
            uuid.uuid4(),
            tenant,
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await fresh_db.execute("DELETE FROM event_log")


async def test_a_consumer_claims_an_event_once(fresh_db: asyncpg.Connection) -> None:
    from strata.events.entities import AgentDeleted
    from strata.events.outbox import claim_event

    await apply_migrations(fresh_db)
    event = AgentDeleted(tenant_id=uuid.uuid4(), correlation_id="c", agent_id=uuid.uuid4())

    first = await claim_event(fresh_db, "runtime.on_agent_deleted", event)
    again = await claim_event(fresh_db, "runtime.on_agent_deleted", event)
    other_consumer = await claim_event(fresh_db, "evaluation.on_agent_deleted", event)

    assert (first, again, other_consumer) == (True, False, True)
