"""Server-Timing entries a request's work adds (e.g. `decision;dur=1.20`): the HTTP middleware answers them after
its own `app` entry, so a client (the console, a benchmark) sees where the time of one request went."""

from __future__ import annotations

from contextvars import ContextVar

_entries: ContextVar[list[str] | None] = ContextVar("strata_server_timing", default=None)


def start() -> None:
    """A new request: no entries yet (called by the middleware)."""
    _entries.set([])


def add(name: str, duration_ms: float, description: str = "") -> None:
    """Report a named piece of this request's work; outside a request this does nothing."""
    entries = _entries.get()
    if entries is not None:
        desc = f';desc="{description}"' if description else ""
        entries.append(f"{name};dur={duration_ms:.2f}{desc}")


def header(app_ms: float) -> str:
    return ", ".join([f"app;dur={app_ms:.2f}", *(_entries.get() or [])])
