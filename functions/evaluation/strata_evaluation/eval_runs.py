"""Regression runs: an agent, at the version it has now, run over every case of an evaluation dataset through the
real platform (each case a goal with a given one-task plan: planned, gated by supervision, run by the runtime,
scored like any task), then compared with a baseline run of the same dataset: a per-case diff, the aggregate delta,
and a gate that fails when the score drops more than allowed (or stays under a floor). A failed gate raises a
regression alert; the gate's verdict is what a CI job waits for."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import db, peers
from strata.errors import InvalidInputError, NotFoundError
from strata.events.envelope import Event
from strata.events.evaluation import EvalRunCompleted, EvalRunRequested
from strata.events.outbox import UnitOfWork, unit_of_work
from strata.pagination import PageRequest, Where, fetch_page
from strata_evaluation import datasets, metrics
from strata_evaluation.checks import expected_as_criteria

logger = Logger(child=True)

COLUMNS = (
    "eval_run_id, dataset_id, dataset_version, agent_id, agent_version, baseline_id, max_drop, min_score, timeout_s,"
    " status, cases_total, cases_done, score, pass_rate, baseline_score, delta, gate, gate_reasons, cost_micro_usd,"
    " requested_by, created_at, finished_at"
)
CASE_COLUMNS = "case_id, position, definition, goal_id, run_id, status, score, scores, reasons, output, error,"
CASE_COLUMNS += " cost_micro_usd, finished_at"
SUBMIT_CONCURRENCY = 4
EXPIRY_BATCH = 100


@dataclass(frozen=True)
class Origin:
    """The tenant and correlation a change is made under (an event, or a schedule's own)."""

    tenant_id: UUID
    correlation_id: str
    causation_id: str | None = None

    @classmethod
    def of(cls, event: Event) -> Origin:
        return cls(event.tenant_id, event.correlation_id, str(event.event_id))


def plan_task(dataset: dict[str, Any], case: dict[str, Any], agent_id: UUID) -> dict[str, Any]:
    """The one task a case is run as."""
    text = case["input"] if isinstance(case["input"], str) else ""
    criteria = list(case.get("criteria") or [])
    if case.get("expected") is not None:
        criteria += expected_as_criteria(case["expected"])
    return {
        "task_id": "case",
        "title": f"{dataset['name']} / {case['case_id']}"[:500],
        "kind": "agent",
        "agent_id": str(agent_id),
        "instructions": "\n\n".join(p for p in (dataset.get("instructions") or "", text) if p)[:20_000],
        "input": case["input"] if isinstance(case["input"], dict) else {},
        "output_schema": dataset.get("output_schema"),
        "success_criteria": criteria,
        "rubric": case.get("rubric") or dataset.get("rubric"),
        "retry": {"max_attempts": 2, "backoff_s": 1},
    }


async def start(
    tenant_id: UUID,
    correlation_id: str,
    requested_by: str,
    dataset_id: UUID,
    agent_id: UUID,
    baseline: UUID | str | None,
    max_drop: float,
    min_score: float | None,
    timeout_s: int,
) -> dict[str, Any]:
    """Create the regression run and its cases (the dataset's cases as they are now) with EvalRunRequested; the
    consumer of that event submits the cases' goals."""
    dataset = await datasets.get(tenant_id, dataset_id)
    agent = await _agent(tenant_id, correlation_id, agent_id)
    baseline_id = await _baseline(tenant_id, dataset_id, agent_id, baseline)
    eval_run_id = uuid4()
    async with unit_of_work(tenant_id) as uow:
        row = await uow.conn.fetchrow(
            f"""INSERT INTO eval_runs (tenant_id, eval_run_id, dataset_id, dataset_version, agent_id, agent_version,
                                       baseline_id, max_drop, min_score, timeout_s, cases_total, requested_by)
                VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}""",  # noqa: S608
            eval_run_id,
            dataset_id,
            dataset["version"],
            agent_id,
            int(agent["version"]),
            baseline_id,
            max_drop,
            min_score,
            timeout_s,
            len(dataset["cases"]),
            requested_by,
        )
        await uow.conn.executemany(
            """INSERT INTO eval_run_cases (tenant_id, eval_run_id, case_id, position, definition)
               VALUES (strata_tenant(), $1, $2, $3, $4)""",
            [
                (eval_run_id, case["case_id"], n, {**case, "task": plan_task(dataset, case, agent_id)})
                for n, case in enumerate(dataset["cases"])
            ],
        )
        await uow.emit(
            EvalRunRequested(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                eval_run_id=eval_run_id,
                dataset_id=dataset_id,
                agent_id=agent_id,
                cases=len(dataset["cases"]),
                requested_by=requested_by[:200],
            )
        )
    assert row is not None
    return dict(row)


async def _agent(tenant_id: UUID, correlation_id: str, agent_id: UUID) -> dict[str, Any]:
    try:
        agent = await peers.get_json(f"/v1/agents/{agent_id}", tenant_id=tenant_id, correlation_id=correlation_id)
    except peers.PeerStatusError as exc:
        if exc.status == 404:
            raise InvalidInputError(f"no agent {agent_id}") from exc
        raise
    if agent.get("status") != "active":
        raise InvalidInputError(f"the agent {agent_id} is {agent.get('status')}; only an active agent can be run")
    return agent


async def _baseline(tenant_id: UUID, dataset_id: UUID, agent_id: UUID, baseline: UUID | str | None) -> UUID | None:
    """The run to compare with: the one named (completed, same dataset), or with "auto" the newest completed run of
    the dataset and agent whose gate passed (none: no comparison)."""
    if baseline is None:
        return None
    if baseline == "auto":
        rows = await db.fetch(
            "SELECT eval_run_id FROM eval_runs WHERE dataset_id = $1 AND agent_id = $2 AND status = 'completed' "
            "AND gate = 'passed' ORDER BY finished_at DESC LIMIT 1",
            dataset_id,
            agent_id,
            tenant_id=tenant_id,
        )
        return rows[0]["eval_run_id"] if rows else None
    rows = await db.fetch(
        "SELECT dataset_id, status FROM eval_runs WHERE eval_run_id = $1", baseline, tenant_id=tenant_id
    )
    if not rows:
        raise InvalidInputError(f"no regression run {baseline} to use as the baseline")
    if rows[0]["dataset_id"] != dataset_id:
        raise InvalidInputError("the baseline ran another dataset")
    if rows[0]["status"] != "completed":
        raise InvalidInputError("the baseline has not completed")
    return UUID(str(baseline))


async def on_eval_run_requested(event: EvalRunRequested) -> None:
    """Submit a goal for every case that has none yet (a redelivery, or a retry after a crash, submits only what is
    left), on behalf of whoever asked for the run."""
    cases = await db.fetch(
        "SELECT case_id, definition FROM eval_run_cases WHERE eval_run_id = $1 AND goal_id IS NULL "
        "AND status = 'pending' ORDER BY position",
        event.eval_run_id,
        tenant_id=event.tenant_id,
    )
    gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def submit(case: Any) -> None:
        async with gate:
            await _submit_case(event, case["case_id"], case["definition"])

    await asyncio.gather(*(submit(c) for c in cases))


async def _submit_case(event: EvalRunRequested, case_id: str, definition: dict[str, Any]) -> None:
    body = {
        "text": f"Regression run {event.eval_run_id}: {definition['task']['title']}",
        "plan": {"tasks": [definition["task"]]},
        "on_behalf_of": event.requested_by,
    }
    response = await peers.call(
        "POST", "/v1/goals", tenant_id=event.tenant_id, correlation_id=event.correlation_id, json=body
    )
    if response.status_code >= 500 or response.status_code == 429:
        raise RuntimeError(f"planning answered {response.status_code}")  # the bus retries the rest
    async with unit_of_work(event.tenant_id) as uow:
        if response.status_code == 202:
            await uow.conn.execute(
                "UPDATE eval_run_cases SET goal_id = $3 WHERE eval_run_id = $1 AND case_id = $2",
                event.eval_run_id,
                case_id,
                UUID(response.json()["goal_id"]),
            )
            return
        detail = response.json().get("detail", "") if response.content else ""
        refused = f"planning refused the case's goal ({response.status_code}): {str(detail)[:1500]}"
        await _settle(
            uow,
            Origin.of(event),
            "eval_run_id = $1 AND case_id = $2",
            [event.eval_run_id, case_id],
            CaseOutcome("error", error=refused),
        )


@dataclass(frozen=True)
class CaseOutcome:
    """How a case of a regression run ended."""

    status: str  # passed, failed or error
    run_id: UUID | None = None
    score: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    output: Any = None
    error: str | None = None
    cost_micro_usd: int = 0


async def settle_case(uow: UnitOfWork, origin: Origin | Event, goal_id: UUID | None, outcome: CaseOutcome) -> None:
    """Record the outcome of the case whose goal this is (nothing when the goal is no case's, or it settled)."""
    if goal_id is not None:
        await _settle(
            uow, origin if isinstance(origin, Origin) else Origin.of(origin), "goal_id = $1", [goal_id], outcome
        )


async def _settle(uow: UnitOfWork, origin: Origin, where: str, args: list[Any], outcome: CaseOutcome) -> None:
    """Settle the pending case `where` picks; the regression run finishes with its last case."""
    n = len(args)
    row = await uow.conn.fetchrow(
        f"""UPDATE eval_run_cases SET status = ${n + 1}, run_id = ${n + 2}, score = ${n + 3}, scores = ${n + 4},
                   reasons = ${n + 5}, output = ${n + 6}, error = ${n + 7}, cost_micro_usd = ${n + 8},
                   finished_at = now()
            WHERE {where} AND status = 'pending' RETURNING eval_run_id""",  # noqa: S608 - the callers' constant clauses
        *args,
        outcome.status,
        outcome.run_id,
        outcome.score,
        outcome.scores,
        outcome.reasons,
        outcome.output,
        outcome.error,
        outcome.cost_micro_usd,
    )
    if row is None:
        return
    progress = await uow.conn.fetchrow(
        """UPDATE eval_runs SET cases_done = cases_done + 1, cost_micro_usd = cost_micro_usd + $2
           WHERE eval_run_id = $1 AND status = 'running' RETURNING cases_done, cases_total""",
        row["eval_run_id"],
        outcome.cost_micro_usd,
    )
    if progress is not None and progress["cases_done"] >= progress["cases_total"]:
        await _finish(uow, origin, row["eval_run_id"])


async def _finish(uow: UnitOfWork, origin: Origin, eval_run_id: UUID) -> None:
    """Score the regression run, compare it with its baseline, decide the gate; EvalRunCompleted, and a regression
    alert when the gate failed."""
    conn = uow.conn
    run = await conn.fetchrow(f"SELECT {COLUMNS} FROM eval_runs WHERE eval_run_id = $1 FOR UPDATE", eval_run_id)  # noqa: S608
    assert run is not None
    cases = await conn.fetch(
        "SELECT case_id, status, score FROM eval_run_cases WHERE eval_run_id = $1 ORDER BY position", eval_run_id
    )
    score = sum(float(c["score"] or 0) for c in cases) / len(cases)
    pass_rate = sum(1 for c in cases if c["status"] == "passed") / len(cases)
    reasons: list[str] = []
    baseline_score = delta = None
    if run["baseline_id"] is not None:
        baseline = await conn.fetchrow("SELECT score FROM eval_runs WHERE eval_run_id = $1", run["baseline_id"])
        baseline_score = float(baseline["score"]) if baseline and baseline["score"] is not None else None
        if baseline_score is not None:
            delta = score - baseline_score
            if delta < -run["max_drop"] - 1e-9:
                reasons.append(
                    f"the score fell from {baseline_score:.3f} to {score:.3f} ({delta:+.3f}), more than the "
                    f"{run['max_drop']:.3f} allowed"
                )
            regressed = await _regressed_cases(conn, eval_run_id, run["baseline_id"])
            if regressed and reasons:
                reasons.append(f"cases that passed in the baseline and fail now: {', '.join(regressed[:20])}")
    if run["min_score"] is not None and score < run["min_score"]:
        reasons.append(f"the score {score:.3f} is under the required {run['min_score']:.3f}")
    gate = "failed" if reasons else "passed"
    await conn.execute(
        """UPDATE eval_runs SET status = 'completed', score = $2, pass_rate = $3, baseline_score = $4, delta = $5,
               gate = $6, gate_reasons = $7, finished_at = now()
           WHERE eval_run_id = $1""",
        eval_run_id,
        score,
        pass_rate,
        baseline_score,
        delta,
        gate,
        reasons,
    )
    await uow.emit(
        EvalRunCompleted(
            tenant_id=origin.tenant_id,
            correlation_id=origin.correlation_id,
            causation_id=origin.causation_id,
            eval_run_id=eval_run_id,
            dataset_id=run["dataset_id"],
            agent_id=run["agent_id"],
            agent_version=run["agent_version"],
            score=score,
            pass_rate=pass_rate,
            baseline_id=run["baseline_id"],
            delta=delta,
            gate=gate,
            reasons=[r[:2000] for r in reasons[:20]],
        )
    )
    if gate == "failed":
        await metrics.raise_alert(
            uow,
            origin.tenant_id,
            origin.correlation_id,
            kind="regression",
            severity="critical",
            dedup_key=f"regression:{run['dataset_id']}:{run['agent_id']}",
            subject=f"agent:{run['agent_id']}",
            metric="eval.score",
            value=score,
            baseline=baseline_score,
            message=f"regression run {eval_run_id} failed its gate: " + "; ".join(reasons),
            detail={"eval_run_id": str(eval_run_id), "dataset_id": str(run["dataset_id"]), "reasons": reasons},
            throttle_s=0,
        )


async def _regressed_cases(conn: Any, eval_run_id: UUID, baseline_id: UUID) -> list[str]:
    rows = await conn.fetch(
        """SELECT c.case_id FROM eval_run_cases c JOIN eval_run_cases b
               ON b.eval_run_id = $2 AND b.case_id = c.case_id
           WHERE c.eval_run_id = $1 AND b.status = 'passed' AND c.status <> 'passed' ORDER BY c.position""",
        eval_run_id,
        baseline_id,
    )
    return [str(r["case_id"]) for r in rows]


async def get(tenant_id: UUID, eval_run_id: UUID) -> dict[str, Any]:
    """A regression run with every case, each beside its baseline's outcome (the per-case diff)."""
    async with db.transaction(tenant_id) as conn:
        run = await conn.fetchrow(f"SELECT {COLUMNS} FROM eval_runs WHERE eval_run_id = $1", eval_run_id)  # noqa: S608
        if run is None:
            raise NotFoundError(f"no regression run {eval_run_id}")
        cases = await conn.fetch(
            f"SELECT {CASE_COLUMNS} FROM eval_run_cases WHERE eval_run_id = $1 ORDER BY position",  # noqa: S608
            eval_run_id,
        )
        baseline = {}
        if run["baseline_id"] is not None:
            rows = await conn.fetch(
                "SELECT case_id, status, score FROM eval_run_cases WHERE eval_run_id = $1", run["baseline_id"]
            )
            baseline = {r["case_id"]: r for r in rows}
    items = []
    for case in cases:
        before = baseline.get(case["case_id"])
        item = dict(case)
        item["baseline_status"] = before["status"] if before else None
        item["baseline_score"] = before["score"] if before else None
        item["change"] = _change(case, before) if run["baseline_id"] is not None else None
        items.append(item)
    return {**dict(run), "cases": items}


def _change(case: Any, before: Any) -> str | None:
    if case["status"] == "pending":
        return None
    if before is None or before["status"] == "pending":
        return "new"
    was, now = before["status"] == "passed", case["status"] == "passed"
    if was and not now:
        return "regressed"
    if now and not was:
        return "improved"
    delta = float(case["score"] or 0) - float(before["score"] or 0)
    return "regressed" if delta < -1e-9 else "improved" if delta > 1e-9 else "unchanged"


async def list_page(
    tenant_id: UUID, page: PageRequest, dataset_id: UUID | None, agent_id: UUID | None
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(dataset_id, "dataset_id = {}").add_if(agent_id, "agent_id = {}")
    return await fetch_page("eval_runs", COLUMNS, "eval_run_id", where, page)


async def expire_due() -> dict[str, int]:
    """The schedule: cases of regression runs past their timeout end in error (a goal that never finished, or a
    submission that was lost), so every run completes."""
    due = await db.fetch(
        "SELECT tenant_id, eval_run_id FROM eval_runs WHERE status = 'running' "
        "AND created_at + make_interval(secs => timeout_s) < now() ORDER BY created_at LIMIT $1",
        EXPIRY_BATCH,
    )
    expired = 0
    for item in due:
        origin = Origin(item["tenant_id"], str(item["eval_run_id"]))
        async with unit_of_work(item["tenant_id"]) as uow:
            pending = await uow.conn.fetch(
                "SELECT case_id FROM eval_run_cases WHERE eval_run_id = $1 AND status = 'pending'",
                item["eval_run_id"],
            )
            for case in pending:
                await _settle(
                    uow,
                    origin,
                    "eval_run_id = $1 AND case_id = $2",
                    [item["eval_run_id"], case["case_id"]],
                    CaseOutcome("error", error="the case did not finish before the regression run's timeout"),
                )
                expired += 1
    if expired:
        logger.info("regression cases past their timeout", extra={"expired": expired})
    return {"expired": expired}
