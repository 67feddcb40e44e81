"""The `strata` CLI's offline commands."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from strata.events import EVENT_TYPES
from strata_cli.main import app


def test_event_schemas_are_exported_one_file_per_contract(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["event-schemas", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(EVENT_TYPES)
    task_completed = json.loads((tmp_path / "TaskCompleted.json").read_text())
    assert {"run_id", "task_id", "output", "tenant_id", "event_id"} <= set(task_completed["properties"])
