"""The platform's schemas: the database's (`strata migrate`) and the events' (`strata event-schemas`)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from strata_cli.client import REFUSED, fail
from strata_cli.display import console
from strata_cli.project import project_root, session_file


def migrate(
    database_url: Annotated[str | None, typer.Option(envvar="DATABASE_URL", help="Postgres URL.")] = None,
) -> None:
    """Apply pending schema migrations (forward-only, recorded, safe to run twice)."""
    root = project_root()
    if database_url is None:
        path = session_file(root)
        if not path.is_file():
            fail("set DATABASE_URL or start `strata dev` first", REFUSED)
        database_url = json.loads(path.read_text())["database_url"]
    sys.path.insert(0, str(root / "shared"))
    import asyncpg

    from strata.migrations import apply_migrations

    async def run() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            return await apply_migrations(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    console.print(f"applied: {', '.join(applied)}" if applied else "the schema is up to date")


def event_schemas(
    out: Annotated[Path | None, typer.Option(help="Write <DetailType>.json files here instead of printing.")] = None,
) -> None:
    """Export the JSON Schema of every event contract (the registry in shared/strata/events)."""
    sys.path.insert(0, str(project_root() / "shared"))
    from strata.events import EVENT_TYPES

    schemas = {name: EVENT_TYPES[name].model_json_schema() for name in sorted(EVENT_TYPES)}
    if out is None:
        console.print_json(data=schemas)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas.items():
        (out / f"{name}.json").write_text(json.dumps(schema, indent=2) + "\n")
    console.print(f"wrote {len(schemas)} schemas to {out}")
