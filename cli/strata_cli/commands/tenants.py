"""Tenants (the operator's, through L11's sagas): provision one (tenant, first key, budgets, default policies) or
delete one with everything it holds; each shown step by step."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strata_cli.client import FAILED, ApiKeyOption, ApiOption, connect
from strata_cli.display import console, local_time, print_json, print_table, table

tenants_app = typer.Typer(help="Provision and delete tenants (operator keys: platform:admin).", no_args_is_help=True)


def _print_saga(saga: dict[str, Any]) -> None:
    shown = table(
        f"saga {saga['saga_id']} ({saga['kind']}): {saga['status']}", "#", "Step", "Status", "Attempts", "Error"
    )
    for step in saga["steps"]:
        shown.add_row(
            str(step["step_index"]), step["name"], step["status"], str(step["attempts"]), (step["error"] or "")[:80]
        )
    print_table(shown)
    if saga.get("error"):
        console.print(saga["error"], style="red", markup=False)


def _finish(saga: dict[str, Any], json_output: bool) -> None:
    if json_output:
        print_json(saga)
    else:
        _print_saga(saga)
    if saga["status"] in ("running", "compensating"):
        console.print(f"still {saga['status']}: follow it with `strata tenants saga {saga['saga_id']}`")
    elif saga["status"] != "completed":
        raise typer.Exit(FAILED)


@tenants_app.command("create")
def create_tenant(
    name: Annotated[str, typer.Argument(help="The tenant's name.")],
    tier: Annotated[str, typer.Option(help="Its rate-limit tier.")] = "standard",
    json_output: Annotated[bool, typer.Option("--json", help="Print the saga (and the key) as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Provision a tenant: the tenant and its first admin key, the default budgets and policies (undone on failure)."""
    with connect(api, key) as client:
        saga = client.post("/v1/sagas/tenant-provisioning", {"name": name, "tier": tier})
    _finish(saga, json_output)
    admin_key = saga.get("admin_key")
    if admin_key and not json_output:
        console.print(f"tenant {saga['subject_tenant_id']}; its admin key, shown this once:", style="yellow")
        console.print(admin_key["api_key"], markup=False, highlight=False)


@tenants_app.command("delete")
def delete_tenant(
    tenant_id: Annotated[str, typer.Argument(help="The tenant to delete.")],
    confirm: Annotated[str, typer.Option("--confirm", help="The tenant's name, to confirm.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the saga).")] = "",
    json_output: Annotated[bool, typer.Option("--json", help="Print the saga as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Delete a tenant: suspended, its work stopped, everything it holds erased in every layer, then verified."""
    with connect(api, key) as client:
        saga = client.post(
            "/v1/sagas/tenant-deletion", {"tenant_id": tenant_id, "confirm_name": confirm, "reason": reason}
        )
    _finish(saga, json_output)


@tenants_app.command("sagas")
def list_sagas(
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many, newest first.")] = 20,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """The tenant sagas run, newest first."""
    with connect(api, key) as client:
        found = client.first("/v1/sagas", limit)
    shown = table("Sagas", "Saga", "Kind", "Tenant", "Status", "Started", "Finished")
    for saga in found:
        shown.add_row(
            saga["saga_id"],
            saga["kind"],
            saga["subject_tenant_id"] or "",
            saga["status"],
            local_time(saga["created_at"]),
            local_time(saga.get("finished_at")),
        )
    print_table(shown)


@tenants_app.command("saga")
def show_saga(
    saga_id: Annotated[str, typer.Argument(help="The saga.")],
    retry: Annotated[bool, typer.Option("--retry", help="Take a failed saga up again where it stopped.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """One saga's steps (and, with --retry, a failed one taken up again)."""
    with connect(api, key) as client:
        saga = client.post(f"/v1/sagas/{saga_id}/retry", {}) if retry else client.get(f"/v1/sagas/{saga_id}")
    _finish(saga, False)
