"""Fixtures shared by every test level: the project root and state folders the embedded servers can use."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def make_state_dir(prefix: str) -> Path:
    """A fresh folder that pgserver's unprivileged postgres user can reach (pytest's tmp is root-only)."""
    folder = Path(tempfile.mkdtemp(prefix=f"strata-{prefix}-"))
    os.chmod(folder, 0o755)
    return folder


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A real, embedded Postgres 16 for the session; yields its admin URL (unix socket)."""
    import pgserver

    folder = make_state_dir("pg")
    server = pgserver.get_server(str(folder / "data"), cleanup_mode="stop")
    yield f"postgresql://postgres@/postgres?host={folder / 'data'}"
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)
