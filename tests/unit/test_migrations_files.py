"""Migration files: discovery, naming, the ban on destructive statements, and checksums (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.migrations import Migration, MigrationError, discover
from strata.migrations.runner import SQL_DIR

CREATE_WIDGETS = "CREATE TABLE widgets (id uuid PRIMARY KEY);\n"
# sha256 of CREATE_WIDGETS: pinned, because a changed checksum algorithm makes every applied migration look edited.
CREATE_WIDGETS_SHA256 = "b8c40a608fdd3f57929ba242fe103068176c453271c22cb461902383285213a6"


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")
    return directory


# The shipped migrations


def test_the_shipped_migrations_are_discovered_in_order_with_unique_versions() -> None:
    migrations = discover()
    versions = [m.version for m in migrations]

    assert migrations, f"no migrations in {SQL_DIR}"
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    assert migrations[0].version == 1
    assert migrations[0].name == "foundation"


def test_every_shipped_sql_file_is_a_discovered_migration() -> None:
    discovered = [f"{m.version:04d}_{m.name}.sql" for m in discover()]

    assert discovered == sorted(path.name for path in SQL_DIR.glob("*.sql"))


def test_the_shipped_migrations_carry_their_files_sql() -> None:
    for migration in discover():
        path = SQL_DIR / f"{migration.version:04d}_{migration.name}.sql"
        assert migration.sql == path.read_text(encoding="utf-8")


# Discovery rules


def test_migrations_are_ordered_by_version_not_by_creation(tmp_path: Path) -> None:
    write_migrations(
        tmp_path,
        {"0010_tenth.sql": CREATE_WIDGETS, "0001_first.sql": CREATE_WIDGETS, "0002_second.sql": CREATE_WIDGETS},
    )

    assert [(m.version, m.name) for m in discover(tmp_path)] == [(1, "first"), (2, "second"), (10, "tenth")]


def test_files_other_than_sql_are_ignored(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"0001_first.sql": CREATE_WIDGETS, "README.md": "DROP TABLE x;"})

    assert [m.name for m in discover(tmp_path)] == ["first"]


def test_an_empty_directory_has_no_migrations(tmp_path: Path) -> None:
    assert discover(tmp_path) == []


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE x;",
        "drop table if exists x;",
        "DROP  SCHEMA app CASCADE;",
        "ALTER TABLE widgets DROP COLUMN colour;",
        "DROP DATABASE strata;",
        "TRUNCATE widgets;",
        "CREATE TABLE y (id int);\nDROP\n  TABLE x;",
    ],
)
def test_a_destructive_migration_is_refused(tmp_path: Path, statement: str) -> None:
    write_migrations(tmp_path, {"0001_first.sql": CREATE_WIDGETS, "0002_cleanup.sql": statement})

    with pytest.raises(MigrationError, match=r"0002_cleanup\.sql: migrations never drop or truncate"):
        discover(tmp_path)


def test_destructive_words_in_comments_are_allowed(tmp_path: Path) -> None:
    sql = "-- never DROP TABLE widgets: other layers read it\nCREATE INDEX widgets_id ON widgets (id); -- TRUNCATE\n"
    write_migrations(tmp_path, {"0001_index.sql": sql})

    assert [m.sql for m in discover(tmp_path)] == [sql]


def test_dropping_an_index_is_allowed(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"0001_reindex.sql": "DROP INDEX IF EXISTS widgets_id;"})

    assert [m.name for m in discover(tmp_path)] == ["reindex"]


@pytest.mark.parametrize(
    "name",
    [
        "1_first.sql",
        "001_first.sql",
        "00001_first.sql",
        "0001-first.sql",
        "0001_First.sql",
        "0001_.sql",
        "first.sql",
        "0001_first-step.sql",
    ],
)
def test_a_badly_named_migration_is_refused(tmp_path: Path, name: str) -> None:
    write_migrations(tmp_path, {name: CREATE_WIDGETS})

    with pytest.raises(MigrationError, match=r"named NNNN_snake_name\.sql"):
        discover(tmp_path)


def test_two_migrations_with_one_version_are_refused(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"0001_first.sql": CREATE_WIDGETS, "0001_also_first.sql": CREATE_WIDGETS})

    with pytest.raises(MigrationError, match=r"share a version"):
        discover(tmp_path)


# Checksums


def test_checksums_are_stable_across_discoveries() -> None:
    assert [m.checksum for m in discover()] == [m.checksum for m in discover()]


def test_the_checksum_is_the_sha256_of_the_sql() -> None:
    assert Migration(1, "widgets", CREATE_WIDGETS).checksum == CREATE_WIDGETS_SHA256


def test_the_checksum_depends_only_on_the_sql(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"0007_widgets.sql": CREATE_WIDGETS})

    (discovered,) = discover(tmp_path)

    assert discovered.checksum == Migration(1, "renamed", CREATE_WIDGETS).checksum == CREATE_WIDGETS_SHA256


def test_any_edit_changes_the_checksum() -> None:
    original = Migration(1, "widgets", CREATE_WIDGETS)
    edited = Migration(1, "widgets", CREATE_WIDGETS.replace("uuid", "bigint"))
    whitespace_only = Migration(1, "widgets", CREATE_WIDGETS + "\n")

    assert len({original.checksum, edited.checksum, whitespace_only.checksum}) == 3
