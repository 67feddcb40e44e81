"""`strata status`: every layer and every dependency, as the running platform reports them; exit 0 only when ok."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from strata_cli.client import FAILED, ApiClient, ApiError, ApiKeyOption, ApiOrUrlOption, credentials, fail
from strata_cli.display import console, print_json, print_table, table

COLOURS = {"ok": "green", "closed": "green", "degraded": "yellow", "half_open": "yellow", "unknown": "yellow"}


def mark(value: str | None) -> str:
    """A status as coloured text (the word itself always shows: colour is never the only signal)."""
    if not value:
        return "—"
    return f"[{COLOURS.get(value, 'red')}]{value.replace('_', ' ')}[/]"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def size(value: int | None) -> str:
    if value is None:
        return "—"
    if value < 1024:
        return f"{value} B"
    scaled, unit = value / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, bigger
    return f"{scaled:.1f} {unit}"


def detail(dependency: dict[str, Any]) -> str:
    """What matters of one dependency, in a few words."""
    kind = dependency["kind"]
    if kind == "postgres" and dependency.get("version"):
        used, most = dependency.get("connections"), dependency.get("max_connections")
        parts = [f"Postgres {dependency['version']}", f"{used} of {most} connections" if used is not None else ""]
    elif kind == "redis" and dependency.get("version"):
        limit = dependency.get("max_memory_bytes")
        memory = size(dependency.get("used_memory_bytes")) + (f" of {size(limit)}" if limit else "")
        parts = [f"Redis {dependency['version']}", f"{memory} used"]
    elif kind == "dead_letter_queue" and dependency.get("depth") is not None:
        parts = [
            f"depth {dependency['depth']}",
            f"{dependency['visible']} visible, {dependency['in_flight']} in flight, {dependency['delayed']} delayed",
        ]
    elif kind == "model_provider" and dependency.get("provider_kind"):
        failures = dependency.get("consecutive_failures")
        parts = [dependency["provider_kind"], f"breaker {dependency['breaker'].replace('_', ' ')}"]
        parts += [f"{failures} failures in a row"] if failures else []
        last = dependency.get("last_failure")
        if last:
            parts.append(f"last failure {last['at'][:19].replace('T', ' ')}: {last['message']}")
    else:
        parts = []
    if dependency.get("error") and dependency["error"] not in " ".join(parts):
        parts.append(str(dependency["error"]))
    return "; ".join(p for p in parts if p)


def status(
    url: ApiOrUrlOption = None,
    key: ApiKeyOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Every layer and every dependency, as the running platform reports them; exit 0 only when all is ok."""
    url, key = credentials(url, key)
    with ApiClient(url, key) as client:
        try:
            body = client.get("/v1/status")
        except ApiError as exc:  # exit 1 (not 2): the platform is not well, whatever the reason
            fail(exc.message(), FAILED)
    code = 0 if body["status"] == "ok" else FAILED
    if json_output:
        print_json(body)
        raise typer.Exit(code)
    checked = str(body.get("checked_at", ""))[:19].replace("T", " ")
    console.print(
        f"Strata at {url}: {mark(body['status'])} (checked {checked} UTC{', cached' if body.get('cached') else ''})"
    )
    for reason in body.get("reasons", []):
        console.print(f"  - {reason}", markup=False, highlight=False)
    history = body.get("latency_history") or {}
    layers = table(
        f"Layers (p50 and max over each layer's last {history.get('size', '?')} checks"
        + ("" if history.get("kept", True) else "; Redis is down: this check only")
        + ")",
        "Layer",
        "Status",
        "Version",
        "Last",
        "p50",
        "Max",
        "Checks",
        "Peer breaker",
        "Detail",
    )
    for layer in body["layers"]:
        layers.add_row(
            f"{layer['number']} {layer['layer']}",
            mark(layer["status"]),
            layer.get("version") or "—",
            ms(layer.get("latency_ms")),
            ms(layer.get("latency_p50_ms")),
            ms(layer.get("latency_max_ms")),
            str(layer.get("latency_samples", 0)),
            mark(layer.get("peer_breaker")),
            Text(layer.get("error") or ""),  # plain text: an error's brackets are not markup
        )
    print_table(layers)
    dependencies = table("Dependencies", "Dependency", "Kind", "Status", "Latency", "Detail")
    for dependency in body.get("dependencies", []):
        dependencies.add_row(
            dependency["name"] + (" (critical)" if dependency.get("critical") else ""),
            dependency["kind"].replace("_", " "),
            mark(dependency["status"]),
            ms(dependency.get("latency_ms")),
            Text(detail(dependency)),
        )
    print_table(dependencies)
    raise typer.Exit(code)
