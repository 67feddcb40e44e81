"""Scoring finished work. Every TaskCompleted is evaluated once: the deterministic checks its plan asks for (output
schema, success criteria), the LLM judge where a rubric applies, and, for an agent's task, whether supervision
denied any of its tool calls; its samples go to the metrics (and the anomaly detector), and TaskEvaluated carries the
scores. A run is scored when it has finished and every task of it is evaluated (RunEvaluated), whichever of the two
comes last; a case of a regression run settles with its run. A run an operator reopened (a failed task retried) is
scored again when it ends again: the evaluation of its latest end replaces the one before."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import db, peers
from strata.events.envelope import Event
from strata.events.evaluation import RunEvaluated, TaskEvaluated
from strata.events.outbox import UnitOfWork, unit_of_work
from strata.events.planning import GoalRejected
from strata.events.runtime import RunCancelled, RunCompleted, RunFailed, TaskCompleted, TaskFailed
from strata.events.supervision import PlanRejected
from strata_evaluation import eval_runs, metrics, quality
from strata_evaluation.checks import Verdicts, run_checks
from strata_evaluation.eval_runs import CaseOutcome
from strata_evaluation.judge import judge
from strata_evaluation.settings import TenantEvaluationSettings, for_scoring

logger = Logger(child=True)

EVALUATION_COLUMNS = (
    "evaluation_id, subject_type, run_id, task_id, attempt, agent_id, goal_id, status, score, passed, scores,"
    " reasons, checks, judge, output, task_count, denied_calls, duration_ms, cost_micro_usd, evaluated_at, created_at"
)
# A run's evaluation is of its latest end (`ended_at` in its output: the end event's time; a row from before that was
# recorded counts from its creation). An end after an operator reopened the run makes a new evaluation in place of
# the earlier end's, to be scored anew; an earlier end delivered again or late changes nothing.
LATEST_END = """ON CONFLICT (tenant_id, subject_type, subject_id, (coalesce(task_id, ''))) DO UPDATE SET
                evaluation_id = EXCLUDED.evaluation_id, goal_id = EXCLUDED.goal_id, status = 'pending', score = 0,
                passed = EXCLUDED.passed, scores = '{}', reasons = EXCLUDED.reasons, output = EXCLUDED.output,
                task_count = EXCLUDED.task_count, denied_calls = 0, duration_ms = EXCLUDED.duration_ms,
                cost_micro_usd = EXCLUDED.cost_micro_usd, evaluated_at = NULL, created_at = now()
                WHERE coalesce((evaluations.output->>'ended_at')::timestamptz, evaluations.created_at)
                      < (EXCLUDED.output->>'ended_at')::timestamptz"""


def subject_of(agent_id: UUID | None, tool: str | None) -> str:
    """Whose quality a task's samples count towards."""
    if agent_id is not None:
        return f"agent:{agent_id}"
    return f"tool:{tool}" if tool else "tool:unknown"


async def on_task_completed(event: TaskCompleted) -> None:
    settings = await for_scoring(event.tenant_id)
    verdicts, judged, denied = Verdicts(), None, 0
    is_agent = event.agent_id is not None
    reads_peers = event.checked or is_agent
    if reads_peers and await _evaluated(event):
        return  # a redelivery: no second judge call or peer read (a plain task's insert is idempotent anyway)
    if event.checked or (is_agent and settings.judge == "always"):
        task = await peers.get_for_event(event, f"/v1/runs/{event.run_id}/tasks/{event.task_id}")
        verdicts = run_checks(event.output, task.get("output_schema"), task.get("success_criteria") or [])
        rubric = task.get("rubric") or (settings.default_rubric if is_agent and settings.judge == "always" else None)
        if rubric and settings.judge != "never":
            judged = await judge(
                event.tenant_id, event.correlation_id, event.run_id, task, event.output, rubric, settings
            )
            verdicts.scores["judge"] = judged.score
            verdicts.reasons["judge"] = f"{judged.record['score']}/5: {judged.reason}"[:2000]
            if judged.score < settings.pass_score:
                verdicts.failed.append("judge")
    if is_agent:
        denied = await _denied_calls(event)
        verdicts.scores["compliance"] = 0.0 if denied else 1.0
        verdicts.reasons["compliance"] = f"{denied} tool calls denied by supervision" if denied else "no call denied"
        if denied:
            verdicts.failed.append("compliance")
    await _record_task(event, settings, verdicts, judged.record if judged else None, denied)


async def _evaluated(event: TaskCompleted) -> bool:
    """Whether this task was evaluated already (a redelivered event: nothing to do, and no second judge call)."""
    rows = await db.fetch(
        "SELECT 1 FROM evaluations WHERE subject_type = 'task' AND subject_id = $1 AND task_id = $2",
        event.run_id,
        event.task_id,
        tenant_id=event.tenant_id,
    )
    return bool(rows)


async def _denied_calls(event: TaskCompleted) -> int:
    found = await peers.get_for_event(
        event, f"/v1/tool-calls?run_id={event.run_id}&task_id={event.task_id}&outcome=denied&limit=200"
    )
    return len(found["items"])


async def _record_task(
    event: TaskCompleted,
    settings: TenantEvaluationSettings,
    verdicts: Verdicts,
    judged: dict[str, Any] | None,
    denied: int,
) -> None:
    scores = verdicts.scores
    overall = sum(scores.values()) / len(scores) if scores else None
    passed = not verdicts.failed
    subject = subject_of(event.agent_id, event.tool)
    samples: dict[str, float] = {
        "task.duration_ms": event.duration_ms,
        "task.cost_micro_usd": event.cost_micro_usd,
        "task.tokens": event.input_tokens + event.output_tokens,
        "task.succeeded": 1.0,
    }
    if overall is not None:
        samples["task.score"] = overall
    if event.agent_id is not None:
        samples["task.compliant"] = 0.0 if denied else 1.0
    evaluation_id = uuid4()
    async with unit_of_work(event.tenant_id) as uow:
        inserted = await uow.conn.fetchval(
            """INSERT INTO evaluations (evaluation_id, tenant_id, subject_type, subject_id, run_id, task_id, attempt,
                   agent_id, score, passed, scores, reasons, checks, judge, output, denied_calls, duration_ms,
                   cost_micro_usd, evaluated_at)
               VALUES ($1, strata_tenant(), 'task', $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                       $15, now())
               ON CONFLICT DO NOTHING RETURNING true""",
            evaluation_id,
            event.run_id,
            event.task_id,
            event.attempt,
            event.agent_id,
            overall if overall is not None else 1.0,
            passed,
            scores,
            verdicts.reasons,
            verdicts.checks,
            judged,
            event.output,
            denied,
            event.duration_ms,
            event.cost_micro_usd + (int(judged["cost_micro_usd"]) if judged else 0),
        )
        if not inserted:
            return
        source = f"{event.run_id}/{event.task_id}/{event.attempt}"
        await metrics.record(uow, event.tenant_id, event.correlation_id, subject, source, samples, settings.anomalies)
        if scores:
            await uow.emit(
                TaskEvaluated(
                    tenant_id=event.tenant_id,
                    correlation_id=event.correlation_id,
                    causation_id=str(event.event_id),
                    evaluation_id=evaluation_id,
                    run_id=event.run_id,
                    task_id=event.task_id,
                    agent_id=event.agent_id,
                    score=overall,
                    scores=scores,
                    passed=passed,
                    reasons={k: v[:2000] for k, v in verdicts.reasons.items()},
                )
            )
        await _finish_run_if_ready(uow, event, event.run_id)
    await quality.snapshot_if_due(event.tenant_id, subject, settings)


async def on_task_failed(event: TaskFailed) -> None:
    """A failed attempt counts against its subject's reliability."""
    settings = await for_scoring(event.tenant_id)
    async with unit_of_work(event.tenant_id) as uow:
        await metrics.record(
            uow,
            event.tenant_id,
            event.correlation_id,
            subject_of(event.agent_id, event.tool),
            f"{event.run_id}/{event.task_id}/{event.attempt}",
            {"task.succeeded": 0.0},
            settings.anomalies,
        )


def _end(outcome: str, event: RunCompleted | RunFailed) -> dict[str, str]:
    """A run evaluation's output: how the run ended, its plan, and when (which end is the latest)."""
    return {"outcome": outcome, "plan_id": str(event.plan_id), "ended_at": event.occurred_at.isoformat()}


async def on_run_completed(event: RunCompleted) -> None:
    async with unit_of_work(event.tenant_id) as uow:
        await uow.conn.execute(
            f"""INSERT INTO evaluations (evaluation_id, tenant_id, subject_type, subject_id, run_id, goal_id, status,
                    score, task_count, duration_ms, cost_micro_usd, output)
                VALUES ($1, strata_tenant(), 'run', $2, $2, $3, 'pending', 0, $4, $5, $6, $7)
                {LATEST_END}""",  # noqa: S608 - a constant clause
            uuid4(),
            event.run_id,
            event.goal_id,
            event.task_count,
            event.duration_ms,
            event.cost_micro_usd,
            _end("completed", event),
        )
        await _finish_run_if_ready(uow, event, event.run_id)


async def on_run_failed(event: RunFailed) -> None:
    """A failed run is scored at once (it will have no more task evaluations): 0, not passed."""
    async with unit_of_work(event.tenant_id) as uow:
        await _lock_run(uow, event.run_id)
        inserted = await uow.conn.fetchval(
            f"""INSERT INTO evaluations (evaluation_id, tenant_id, subject_type, subject_id, run_id, goal_id, status,
                    score, passed, task_count, output, reasons)
                VALUES ($1, strata_tenant(), 'run', $2, $2, $3, 'pending', 0, false, $4, $5, $6)
                {LATEST_END} RETURNING true""",  # noqa: S608 - a constant clause
            uuid4(),
            event.run_id,
            event.goal_id,
            len(event.failed_task_ids),
            _end("failed", event),
            {"completion": event.error[:2000]},
        )
        if inserted:
            await _finish_run(uow, event, event.run_id, outcome="failed")


async def on_run_cancelled(event: RunCancelled) -> None:
    """A cancelled run is not scored; a regression case it belonged to ends in error."""
    async with unit_of_work(event.tenant_id) as uow:
        cancelled = CaseOutcome("error", error=f"the run was cancelled by {event.cancelled_by}")
        await eval_runs.settle_case(uow, event, event.goal_id, cancelled)


async def on_goal_rejected(event: GoalRejected) -> None:
    """A goal planning refused has no run; a regression case it belonged to ends in error."""
    async with unit_of_work(event.tenant_id) as uow:
        refused = CaseOutcome("error", error="planning refused the goal: " + "; ".join(event.reasons))
        await eval_runs.settle_case(uow, event, event.goal_id, refused)


async def on_plan_rejected(event: PlanRejected) -> None:
    """A plan supervision refused never runs; a regression case it belonged to ends in error."""
    async with unit_of_work(event.tenant_id) as uow:
        refused = CaseOutcome("error", error="supervision refused the plan: " + "; ".join(event.reasons))
        await eval_runs.settle_case(uow, event, event.goal_id, refused)


async def _lock_run(uow: UnitOfWork, run_id: UUID) -> None:
    """Serialise the run's last task evaluation with its end, so exactly one of them sees both and scores it."""
    await uow.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 6))", str(run_id))


async def _finish_run_if_ready(uow: UnitOfWork, cause: Event, run_id: UUID) -> None:
    await _lock_run(uow, run_id)
    pending = await uow.conn.fetchrow(
        """SELECT task_count FROM evaluations
           WHERE subject_type = 'run' AND subject_id = $1 AND status = 'pending'""",
        run_id,
    )
    if pending is None:
        return
    done = await uow.conn.fetchval(
        "SELECT count(*) FROM evaluations WHERE subject_type = 'task' AND subject_id = $1", run_id
    )
    if done >= pending["task_count"]:
        await _finish_run(uow, cause, run_id, outcome="completed")


async def _finish_run(uow: UnitOfWork, cause: Event, run_id: UUID, outcome: str) -> None:
    """Score the run from its tasks' evaluations, mark it done, emit RunEvaluated and settle its regression case."""
    conn = uow.conn
    tasks = await conn.fetch(
        "SELECT task_id, score, passed, scores, reasons, output, denied_calls, cost_micro_usd, "
        "coalesce((judge->>'cost_micro_usd')::bigint, 0) AS judge_cost FROM evaluations "
        "WHERE subject_type = 'task' AND subject_id = $1 ORDER BY task_id",
        run_id,
    )
    by_dimension: dict[str, list[float]] = {}
    for task in tasks:
        for name, value in task["scores"].items():
            by_dimension.setdefault(name, []).append(float(value))
    scores = {name: sum(values) / len(values) for name, values in by_dimension.items()}
    scored = [float(t["score"]) for t in tasks if t["scores"]]
    if outcome == "completed":
        score = sum(scored) / len(scored) if scored else 1.0
        scores["completion"] = 1.0
    else:
        score, scores["completion"] = 0.0, 0.0
    failed_checks = sum(1 for t in tasks if not t["passed"])
    violations = sum(int(t["denied_calls"]) for t in tasks)
    passed = outcome == "completed" and failed_checks == 0
    row = await conn.fetchrow(
        """UPDATE evaluations SET status = 'done', score = $2, passed = $3, scores = $4, evaluated_at = now(),
               denied_calls = $5, cost_micro_usd = cost_micro_usd + $6
           WHERE subject_type = 'run' AND subject_id = $1 AND status = 'pending'
           RETURNING evaluation_id, goal_id, output, task_count, cost_micro_usd""",
        run_id,
        score,
        passed,
        scores,
        violations,
        sum(int(t["judge_cost"]) for t in tasks),  # the run's own cost is there already; judging adds to it
    )
    if row is None:
        return
    plan_id = (row["output"] or {}).get("plan_id")
    await uow.emit(
        RunEvaluated(
            tenant_id=cause.tenant_id,
            correlation_id=cause.correlation_id,
            causation_id=str(cause.event_id),
            evaluation_id=row["evaluation_id"],
            run_id=run_id,
            goal_id=row["goal_id"],
            plan_id=UUID(plan_id) if plan_id else None,
            outcome=outcome,
            score=score,
            scores=scores,
            passed=passed,
            task_count=int(row["task_count"] or 0),
            failed_checks=failed_checks,
            policy_violations=violations,
        )
    )
    if row["goal_id"] is None:
        return
    case = tasks[0] if len(tasks) == 1 else None
    reasons = dict(case["reasons"]) if case else {}
    if outcome == "failed":
        reasons["completion"] = "the run failed"
    settled = CaseOutcome(
        "passed" if passed else "failed",
        run_id=run_id,
        score=score,
        scores=scores,
        reasons=reasons,
        output=case["output"] if case else None,
        cost_micro_usd=int(row["cost_micro_usd"]),
    )
    await eval_runs.settle_case(uow, cause, row["goal_id"], settled)
