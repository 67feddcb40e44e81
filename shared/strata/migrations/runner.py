"""The migration runner: each file `NNNN_name.sql` applies once, in order, in its own transaction."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

SQL_DIR = Path(__file__).with_name("sql")
ADVISORY_LOCK_KEY = 0x5374_7261  # "Stra": one migrator at a time across every function and deploy
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STRINGS_AND_COMMENTS = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.DOTALL)
# TRUNCATE only as a statement (REVOKE ... TRUNCATE ON t is a privilege, not a deletion)
_DESTRUCTIVE = re.compile(r"\bDROP\s+(TABLE|SCHEMA|COLUMN|DATABASE)\b|(?:^|;)\s*TRUNCATE\b", re.IGNORECASE)


class MigrationError(Exception):
    """A migration could not be applied, or an applied one was edited afterwards."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = SQL_DIR) -> list[Migration]:
    """Every migration file in `directory`, ordered by version; destructive statements are refused."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_name.sql")
        sql = path.read_text(encoding="utf-8")
        code = _STRINGS_AND_COMMENTS.sub(" ", sql)
        if _DESTRUCTIVE.search(code):
            raise MigrationError(f"{path.name}: migrations never drop or truncate data")
        migrations.append(Migration(int(match.group(1)), match.group(2), sql))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


async def apply_migrations(conn: asyncpg.Connection, directory: Path = SQL_DIR) -> list[str]:
    """Apply what is pending; returns the names applied (empty when up to date)."""
    import asyncpg

    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(f"{migration.version:04d}_{migration.name} was edited after it was applied")
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"{migration.version:04d}_{migration.name} failed and was rolled back: {exc}"
                ) from exc
            done.append(f"{migration.version:04d}_{migration.name}")
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
