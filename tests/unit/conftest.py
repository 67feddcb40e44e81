"""Fixtures shared by the unit tests (no network, no database)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from strata.config import get_settings

SetEnv = Callable[..., None]


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetEnv]:
    """Set (a string) or unset (None) environment variables and make `get_settings()` read them afresh.

    The process-wide settings cache is cleared again after the test, once the environment is restored.
    """

    def apply(**env: str | None) -> None:
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    get_settings.cache_clear()
    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
