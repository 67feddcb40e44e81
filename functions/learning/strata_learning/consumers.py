"""What learning does when a run has been scored: if it completed, passed and supervision denied none of its calls,
keep its conversations as training examples and learn a plan template from it (each with its own score threshold,
each idempotent, so a redelivered event changes nothing)."""

from __future__ import annotations

from strata.events.evaluation import RunEvaluated
from strata_learning import examples, learned


async def on_run_evaluated(event: RunEvaluated) -> None:
    if event.outcome != "completed" or not event.passed or event.policy_violations:
        return
    await examples.on_run_evaluated(event)
    await learned.on_run_evaluated(event)
