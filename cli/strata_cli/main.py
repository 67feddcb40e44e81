"""The `strata` command: the local cloud, the platform's status and schemas, and the API's goals, runs, approvals,
events and keys (against the running `strata dev`, or any stack with --api and --key)."""

from __future__ import annotations

import typer

from strata_cli.client import credentials
from strata_cli.commands import approvals, evaluation, goals, runs, schema, status
from strata_cli.commands.dev import DEMO_TEMPLATE, dev, run_demo
from strata_cli.commands.events import events_app
from strata_cli.commands.keys import keys_app
from strata_cli.commands.tenants import tenants_app
from strata_cli.display import console
from strata_cli.openapi import openapi_command
from strata_cli.project import project_root, session_file

__all__ = ["DEMO_TEMPLATE", "app", "console", "credentials", "project_root", "run_demo", "session_file"]

app = typer.Typer(
    help="Strata: an AI-agent platform that runs serverless on AWS, and locally without Docker. Commands that call the "
    "API use the running `strata dev` unless given --api and --key (or STRATA_API_URL and STRATA_API_KEY); an "
    "error the API answers is shown with its status and detail and exits 2, a goal or gate that fails exits 1.",
    no_args_is_help=True,
    add_completion=False,
)

# the local checkout and the platform
app.command()(dev)
app.command()(status.status)
app.command()(schema.migrate)
app.command("event-schemas")(schema.event_schemas)
app.command("openapi")(openapi_command)
app.command("eval-gate")(evaluation.eval_gate)
# the API's resources
app.command("goal")(goals.submit_goal)
app.command("runs")(runs.list_runs)
app.add_typer(runs.run_app, name="run")
app.command("approvals")(approvals.list_approvals)
app.command("approve")(approvals.approve)
app.command("reject")(approvals.reject)
app.add_typer(events_app, name="events")
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")
