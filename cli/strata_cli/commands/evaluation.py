"""`strata eval-gate`: run an agent over an evaluation dataset and gate on the result (for CI)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from strata_cli.client import FAILED, ApiKeyOption, ApiOrUrlOption, connect, fail
from strata_cli.display import console, print_table


def eval_gate(
    dataset: Annotated[str, typer.Option(help="The evaluation dataset's id.")],
    agent: Annotated[str, typer.Option(help="The agent's id (run at the version it has now).")],
    baseline: Annotated[str, typer.Option(help="A regression run's id, auto (the last passing one) or none.")] = "auto",
    max_drop: Annotated[float, typer.Option(help="How far the score may fall below the baseline's.")] = 0.05,
    min_score: Annotated[float | None, typer.Option(help="A floor the score must reach.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 3600,
    url: ApiOrUrlOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Run an agent over an evaluation dataset and gate on the result: exit 0 when the gate passes, 1 when not."""
    body: dict[str, Any] = {"dataset_id": dataset, "agent_id": agent, "baseline": baseline, "max_drop": max_drop,
                            "timeout_s": int(min(max(timeout, 10), 86_400))}  # fmt: skip
    if min_score is not None:
        body["min_score"] = min_score
    with connect(url, key) as client:
        run: dict[str, Any] = client.post("/v1/eval-runs", body)
        run_id = run["eval_run_id"]
        deadline = time.monotonic() + timeout
        with console.status(f"regression run {run_id}") as shown:
            while run["status"] != "completed":
                if time.monotonic() > deadline:
                    fail(f"regression run {run_id} did not finish in {timeout:.0f} s", FAILED)
                time.sleep(1)
                run = client.get(f"/v1/eval-runs/{run_id}")
                shown.update(f"regression run {run_id}: {run['cases_done']}/{run['cases_total']} cases")
    table = Table(title=f"Regression run {run_id} of agent v{run['agent_version']}")
    for column in ("Case", "Status", "Score", "Baseline", "Change"):
        table.add_column(column)
    for case in run["cases"]:
        table.add_row(
            case["case_id"],
            case["status"],
            f"{case['score']:.3f}" if case["score"] is not None else "—",
            f"{case['baseline_score']:.3f}" if case["baseline_score"] is not None else "—",
            case["change"] or "—",
        )
    print_table(table)
    delta = f", {run['delta']:+.3f} against the baseline" if run["delta"] is not None else ""
    console.print(f"score {run['score']:.3f}, pass rate {run['pass_rate']:.0%}{delta}")
    for reason in run["gate_reasons"]:
        console.print(f"- {reason}", style="red", markup=False)
    passed = run["gate"] == "passed"
    console.print("[green]gate passed[/green]" if passed else "[red]gate failed[/red]")
    raise typer.Exit(0 if passed else FAILED)
