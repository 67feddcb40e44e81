"""`strata status`: every layer and its dependencies, as the running platform reports them."""

from __future__ import annotations

import typer
from rich.table import Table

from strata_cli.client import FAILED, ApiClient, ApiError, ApiKeyOption, ApiOrUrlOption, credentials, fail
from strata_cli.display import print_table


def status(url: ApiOrUrlOption = None, key: ApiKeyOption = None) -> None:
    """Every layer and its dependencies, as the running platform reports them."""
    url, key = credentials(url, key)
    with ApiClient(url, key) as client:
        try:
            body = client.get("/v1/status")
        except ApiError as exc:  # exit 1 (not 2): the platform is not well, whatever the reason
            fail(exc.message(), FAILED)
    table = Table(title=f"Strata at {url}: {body['status']}")
    for column in ("Layer", "Status", "Latency", "Postgres", "Redis", "Event bus"):
        table.add_column(column)
    mark = {"ok": "[green]ok[/green]"}
    for layer in body["layers"]:
        deps = layer.get("dependencies", {})
        table.add_row(
            f"{layer['number']} {layer['layer']}",
            mark.get(layer["status"], f"[red]{layer['status']}[/red]"),
            f"{layer.get('latency_ms', '—')} ms",
            *(
                mark.get(deps.get(d, {}).get("status", "—"), deps.get(d, {}).get("status", "—"))
                for d in ("postgres", "redis", "event_bus")
            ),
        )
    print_table(table)
    raise typer.Exit(0 if body["status"] == "ok" else FAILED)
