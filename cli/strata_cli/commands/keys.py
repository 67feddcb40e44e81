"""API keys (L09): list, create (the secret is shown once), revoke, rotate with a grace period."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strata_cli.client import ApiKeyOption, ApiOption, connect
from strata_cli.display import console, local_time, print_json, print_table, table

keys_app = typer.Typer(help="The tenant's API keys.", no_args_is_help=True)


def _state(key: dict[str, Any]) -> str:
    if key.get("revoked_at"):
        return "[red]revoked[/red]"
    if key.get("expires_at"):
        return f"expires {local_time(key['expires_at'])}"
    return "[green]active[/green]"


def _print_secret(key: dict[str, Any]) -> None:
    console.print(f"key {key['key_id']} ({key['name']}), scopes {', '.join(key['scopes'])}", markup=False)
    console.print("the secret, shown this once (it is stored only as a salted hash):", style="yellow")
    console.print(key["api_key"], markup=False, highlight=False)


@keys_app.command("list")
def list_keys(
    include_ended: Annotated[bool, typer.Option("--all", help="Revoked and expired keys too.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """List the tenant's API keys (never their secrets)."""
    with connect(api, key) as client:
        found = list(client.pages("/v1/api-keys", page_size=200, include_ended=include_ended))
    if json_output:
        print_json(found)
        return
    shown = table("API keys", "Key ID", "Name", "Prefix", "Scopes", "State", "Created", "Last used")
    for item in found:
        shown.add_row(
            item["key_id"],
            item["name"],
            item["prefix"],
            ", ".join(item["scopes"]),
            _state(item),
            local_time(item["created_at"]),
            local_time(item.get("last_used_at")),
        )
    print_table(shown)


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="What the key is for.")],
    scope: Annotated[
        list[str], typer.Option("--scope", "-s", help="A scope it holds (agents:read, admin...); repeat.")
    ],
    expires_in_days: Annotated[int | None, typer.Option(min=1, max=3650, help="None: it does not expire.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the new key (with its secret) as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Create an API key; its secret is printed this once."""
    body: dict[str, Any] = {"name": name, "scopes": scope}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    with connect(api, key) as client:
        made = client.post("/v1/api-keys", body)
    if json_output:
        print_json(made)
    else:
        _print_secret(made)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id.")],
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Revoke an API key: it stops working at once."""
    with connect(api, key) as client:
        revoked = client.post(f"/v1/api-keys/{key_id}/revoke")
    console.print(
        f"key {revoked['key_id']} ({revoked['name']}) revoked at {local_time(revoked['revoked_at'])}", markup=False
    )


@keys_app.command("rotate")
def rotate_key(
    key_id: Annotated[str, typer.Argument(help="The key's id.")],
    grace_seconds: Annotated[
        int, typer.Option(min=0, max=7 * 86400, help="How long the old key keeps working.")
    ] = 3600,
    json_output: Annotated[bool, typer.Option("--json", help="Print the new key (with its secret) as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Rotate an API key: a new secret now, the old one working for the grace period."""
    with connect(api, key) as client:
        rotated = client.post(f"/v1/api-keys/{key_id}/rotate", {"grace_seconds": grace_seconds})
    if json_output:
        print_json(rotated)
        return
    _print_secret(rotated)
    console.print(f"the old secret works until {local_time(rotated['previous_key_expires_at'])}", markup=False)
