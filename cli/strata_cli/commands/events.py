"""L01's event log: the newest events, oldest first, and with --follow those archived after them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Annotated, Any

import typer
from rich.text import Text

from strata_cli.client import ApiClient, ApiKeyOption, ApiOption, connect
from strata_cli.display import compact, console, parse_moment

events_app = typer.Typer(help="L01's event log: every event on the bus, archived.", no_args_is_help=True)

# Events reach the log through the bus: one may be archived a little after a later one. A follow looks this far
# behind the newest event it has seen, and shows what it had not seen.
ARCHIVE_LAG = timedelta(seconds=30)
FOLLOW_PAGE_CAP = 1000  # events read per type and look while following
STYLE = (("Failed", "red"), ("Rejected", "red"), ("Denied", "red"), ("Completed", "green"), ("Approved", "green"))


def occurred(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


def read_events(
    client: ApiClient, types: list[str], filters: dict[str, Any], since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """The newest `limit` events (of each type, when types are named) since `since`, oldest first."""
    found: dict[str, dict[str, Any]] = {}
    every: list[str | None] = [*types] if types else [None]
    for detail_type in every:
        pages = client.pages(
            "/v1/events",
            page_size=min(limit, 200),
            detail_type=detail_type,
            since=since.isoformat() if since else None,
            **filters,
        )
        for event in islice(pages, limit):
            found[event["event_id"]] = event
    return sorted(found.values(), key=lambda e: (occurred(e), e["event_id"]))


# The envelope's fields, shown once on the line or left out, not again in the detail
ENVELOPE = ("event_id", "tenant_id", "occurred_at", "causation_id", "correlation_id", "schema_version")


def show(event: dict[str, Any], json_output: bool) -> None:
    if json_output:
        console.print(json.dumps(event, default=str), markup=False, highlight=False, soft_wrap=True)
        return
    kind = event["detail_type"]
    style = next((s for suffix, s in STYLE if kind.endswith(suffix)), "cyan")
    when = occurred(event).astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    line = Text.assemble(
        (when, "dim"),
        "  ",
        (kind, style),
        "  ",
        f"{event['aggregate_type']}:{event['aggregate_id']}",
        "  ",
        (compact({k: v for k, v in event["detail"].items() if k not in ENVELOPE}, 300), "default"),
    )
    console.print(line, soft_wrap=True)


@events_app.command("tail")
def tail(
    detail_type: Annotated[
        list[str] | None, typer.Option("--type", "-t", metavar="DETAIL_TYPE", help="Only this type; repeat.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", "-f", help="Keep showing new events (Ctrl-C).")
    ] = False,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time, or how long ago: 90s, 10m, 2h, 1d.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many of the newest events to show first.")] = 20,
    correlation_id: Annotated[str | None, typer.Option(help="Only this run's or request's events.")] = None,
    aggregate_type: Annotated[
        str | None, typer.Option(help="Only events about this kind of thing: run, goal...")
    ] = None,
    aggregate_id: Annotated[str | None, typer.Option(help="Only events about this one (its id).")] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between looks when following.")] = 1.0,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Print the event log's newest events, oldest first; with --follow, new ones as they are archived."""
    types = detail_type or []
    after = parse_moment(since, option="--since", future=False) if since else None
    filters = {"correlation_id": correlation_id, "aggregate_type": aggregate_type, "aggregate_id": aggregate_id}
    with connect(api, key) as client:
        started = datetime.now(UTC)
        recent = started - ARCHIVE_LAG if after is None else max(after, started - ARCHIVE_LAG)
        # what is there already, read before the newest are shown, so that following does not show it again
        already = read_events(client, types, filters, recent, FOLLOW_PAGE_CAP) if follow else []
        shown = read_events(client, types, filters, after, limit)[-limit:]
        for event in shown:
            show(event, json_output)
        if not follow:
            return
        seen = {e["event_id"]: occurred(e) for e in [*already, *shown]}
        newest = max([started, *seen.values()])
        try:
            while True:
                time.sleep(interval)
                window = newest - ARCHIVE_LAG
                if after is not None:
                    window = max(window, after)
                for event in read_events(client, types, filters, window, FOLLOW_PAGE_CAP):
                    if event["event_id"] not in seen:
                        show(event, json_output)
                        seen[event["event_id"]] = occurred(event)
                        newest = max(newest, occurred(event))
                seen = {event_id: at for event_id, at in seen.items() if at >= window - ARCHIVE_LAG}
        except KeyboardInterrupt:
            return
