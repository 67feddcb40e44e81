"""What the CLI shows and reads from people: the consoles, tables, money, durations and times."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

# Piped or captured output has no terminal width to fit: give tables room for whole ids rather than 80 columns.
UNBOUNDED_WIDTH = 240


def print_table(table: Table) -> None:
    """A table, at the terminal's width, or wide enough for whole ids when the output is not a terminal (a pipe,
    a file, a test) whose width would otherwise be taken as 80 columns."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    console.width = max(width, UNBOUNDED_WIDTH)
    try:
        console.print(table)
    finally:
        console.width = width


def print_json(data: Any) -> None:
    """JSON for scripts: plain (no colour, no wrapping), one document."""
    console.print(json.dumps(data, indent=2, default=str), markup=False, highlight=False, soft_wrap=True)


def table(title: str | None, *columns: str) -> Table:
    """A table whose id-like columns (named "... id" or "ID") never wrap."""
    shown = Table(title=title, title_justify="left")
    for column in columns:
        is_id = column.lower().endswith(" id") or column.lower() == "id"
        shown.add_column(column, no_wrap=is_id, overflow="fold")
    return shown


def usd(micro_usd: int | None) -> str:
    """Micro-USD as dollars: $0, $0.000123, $1.50."""
    if not micro_usd:
        return "$0"
    text = f"{micro_usd / 1_000_000:,.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def tokens(input_tokens: int, output_tokens: int) -> str:
    return f"{input_tokens + output_tokens:,} ({input_tokens:,} in + {output_tokens:,} out)"


def parse_stamp(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def between(start: str | None, end: str | None) -> float | None:
    """Seconds from one API timestamp to another (to now when `end` is None and `start` is set)."""
    began = parse_stamp(start)
    if began is None:
        return None
    ended = parse_stamp(end) or datetime.now(UTC)
    return (ended - began).total_seconds()


def local_time(stamp: str | None) -> str:
    """An API timestamp in the local time zone, to the second."""
    moment = parse_stamp(stamp)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)\s*$")
UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_moment(text: str, *, option: str, future: bool) -> datetime:
    """An ISO 8601 time (local when it names no zone), or a duration like 90s, 10m, 2h, 1d counted back from now
    (forward when `future`)."""
    relative = RELATIVE.match(text)
    if relative:
        delta = timedelta(seconds=float(relative.group(1)) * UNITS[relative.group(2)])
        return datetime.now(UTC) + (delta if future else -delta)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO 8601 time nor a duration like 30s, 10m, 2h, 1d", param_hint=option
        ) from exc
    return moment if moment.tzinfo else moment.astimezone()


def compact(value: Any, limit: int = 200) -> str:
    """A JSON value on one line, cut at `limit` characters."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(identifier: str | None) -> str:
    return identifier[:8] if identifier else "—"
