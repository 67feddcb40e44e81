"""What learning does when a run has been scored: keep its conversations as training examples, and learn a plan
template from it (each idempotent, so a redelivered event changes nothing)."""

from __future__ import annotations

from strata.events.evaluation import RunEvaluated
from strata_learning import examples, learned


async def on_run_evaluated(event: RunEvaluated) -> None:
    await examples.on_run_evaluated(event)
    await learned.on_run_evaluated(event)
