"""Quality scores: a subject's (an agent's, a tool's) score from 0 to 100 over a rolling window of its metric
samples, weighted by dimension (accuracy, latency, cost, reliability, compliance; the tenant's weights), with an
assessment band (good >= 80, warning >= 60, else critical) and how complete the data behind it is. A dimension with
no samples in the window is left out and the others' weights are scaled up; completeness says so."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any, Literal, get_args
from uuid import UUID, uuid4

from strata import db
from strata.errors import BadRequestError
from strata_evaluation.settings import TenantEvaluationSettings, evaluation_settings

SeriesName = Literal["task.score", "task.duration_ms", "task.cost_micro_usd", "task.succeeded", "task.compliant"]
SERIES: tuple[str, ...] = get_args(SeriesName)
Bucket = Literal["hour", "day"]
BUCKETS: tuple[str, ...] = get_args(Bucket)
SERIES_MAX_DAYS = 366  # what one series query may span
SERIES_MAX_HOUR_DAYS = 31  # ... with hour buckets
SERIES_DEFAULT_DAYS = 7


def band(overall: float) -> str:
    return "good" if overall >= 80 else "warning" if overall >= 60 else "critical"


def _linear(value: float, best: float, worst: float) -> float:
    """1 at or beyond `best`, 0 at or beyond `worst`, linear between."""
    if best == worst:
        return 1.0 if value == best else 0.0
    return max(0.0, min(1.0, (value - worst) / (best - worst)))


def dimensions(stats: dict[str, dict[str, float]], settings: TenantEvaluationSettings) -> dict[str, dict[str, Any]]:
    """Each dimension with samples: its score in [0, 1], the raw figure behind it, and its sample count."""
    targets = settings.targets
    found: dict[str, dict[str, Any]] = {}
    if "task.score" in stats:
        s = stats["task.score"]
        found["accuracy"] = {"score": s["mean"], "raw": {"mean_task_score": s["mean"]}, "samples": s["count"]}
    if "task.duration_ms" in stats:
        s = stats["task.duration_ms"]
        score = _linear(s["p95"], targets.latency_target_ms, targets.latency_max_ms)
        found["latency"] = {"score": score, "raw": {"p95_ms": s["p95"], "mean_ms": s["mean"]}, "samples": s["count"]}
    if "task.cost_micro_usd" in stats:
        s = stats["task.cost_micro_usd"]
        score = 1.0 - min(1.0, s["mean"] / targets.cost_budget_micro_usd)
        found["cost"] = {"score": score, "raw": {"mean_micro_usd": s["mean"]}, "samples": s["count"]}
    if "task.succeeded" in stats:
        s = stats["task.succeeded"]
        score = _linear(s["mean"], targets.reliability_target, targets.reliability_floor)
        found["reliability"] = {"score": score, "raw": {"success_rate": s["mean"]}, "samples": s["count"]}
    if "task.compliant" in stats:
        s = stats["task.compliant"]
        found["compliance"] = {"score": s["mean"], "raw": {"compliant_rate": s["mean"]}, "samples": s["count"]}
    return found


def score(stats: dict[str, dict[str, float]], settings: TenantEvaluationSettings) -> dict[str, Any]:
    """The quality score from the window's statistics (pure: what the API and the stored history both show)."""
    found = dimensions(stats, settings)
    weights = settings.weights.model_dump()
    present = sum(weights[d] for d in found)
    samples = int(max((d["samples"] for d in found.values()), default=0))
    for name, dim in found.items():
        dim["weight"] = weights[name]
    if not found or present <= 0:
        return {
            "overall": 0.0,
            "assessment": "insufficient_data",
            "dimensions": found,
            "samples": samples,
            "completeness": 0.0,
        }
    overall = 100 * sum(weights[d] * found[d]["score"] for d in found) / present
    completeness = min(1.0, samples / settings.min_samples) * present
    return {
        "overall": round(overall, 2),
        "assessment": band(overall),
        "dimensions": found,
        "samples": samples,
        "completeness": round(completeness, 4),
    }


async def window_stats(tenant_id: UUID, subject: str, window_s: int) -> dict[str, dict[str, float]]:
    rows = await db.fetch(
        """SELECT name, count(*) AS count, avg(value) AS mean,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95
           FROM metrics WHERE subject = $1 AND name = ANY($2::text[]) AND at > now() - make_interval(secs => $3)
           GROUP BY name""",
        subject,
        list(SERIES),
        float(window_s),
        tenant_id=tenant_id,
    )
    return {r["name"]: {"count": float(r["count"]), "mean": float(r["mean"]), "p95": float(r["p95"])} for r in rows}


async def current(tenant_id: UUID, subject: str, settings: TenantEvaluationSettings) -> dict[str, Any]:
    """The subject's quality score now."""
    computed = score(await window_stats(tenant_id, subject, settings.window_s), settings)
    return {"subject": subject, "window_s": settings.window_s, **computed}


_checked: dict[tuple[UUID, str], float] = {}  # when this environment last looked at a subject's history


async def snapshot_if_due(tenant_id: UUID, subject: str, settings: TenantEvaluationSettings) -> bool:
    """Store the subject's score for the history, unless one was stored within the snapshot interval (this
    environment looks at most once an interval per subject, so a busy agent's tasks do not each ask)."""
    interval = evaluation_settings().evaluation_snapshot_interval_s
    looked = time.monotonic()
    last = _checked.get((tenant_id, subject))
    if last is not None and looked - last < interval:
        return False
    if len(_checked) > 10_000:
        _checked.clear()
    _checked[(tenant_id, subject)] = looked
    recent = await db.fetch(
        "SELECT 1 FROM quality_scores WHERE subject = $1 AND computed_at > now() - make_interval(secs => $2) LIMIT 1",
        subject,
        interval,
        tenant_id=tenant_id,
    )
    if recent:
        return False
    now = await current(tenant_id, subject, settings)
    async with db.transaction(tenant_id) as conn:
        await conn.execute(
            """INSERT INTO quality_scores (tenant_id, score_id, subject, overall, assessment, dimensions, samples,
                                           completeness, window_s)
               VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8)""",
            uuid4(),
            subject,
            now["overall"],
            now["assessment"],
            now["dimensions"],
            now["samples"],
            now["completeness"],
            now["window_s"],
        )
    return True


def _instant(moment: datetime | date, *, end: bool) -> datetime:
    """A query bound as an aware UTC datetime: a bare date is its whole UTC day (from its start, or up to its end when
    it ends a range); a datetime without a zone is read as UTC."""
    if isinstance(moment, datetime):
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.combine(moment + timedelta(days=1) if end else moment, clock(), tzinfo=UTC)


def _bucket_start(moment: datetime, bucket: str) -> datetime:
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def series_window(
    bucket: str, start: datetime | date | None, end: datetime | date | None, now: datetime
) -> tuple[datetime, datetime]:
    """The [from, to) a series covers: `to` defaults to now, `from` to 7 days before `to` at the start of its bucket;
    refused when empty or longer than a query may span (31 days with hour buckets, else 366)."""
    stop = _instant(end, end=True) if end is not None else now.astimezone(UTC)
    first = (
        _instant(start, end=False)
        if start is not None
        else _bucket_start(stop - timedelta(days=SERIES_DEFAULT_DAYS), bucket)
    )
    if stop <= first:
        raise BadRequestError(f"`from` must be before `to`: from {first.isoformat()} to {stop.isoformat()} is empty")
    most = SERIES_MAX_HOUR_DAYS if bucket == "hour" else SERIES_MAX_DAYS
    if stop - first > timedelta(days=most):
        raise BadRequestError(f"at most {most} days per query with {bucket} buckets")
    return first, stop


async def series(
    tenant_id: UUID,
    metric: str,
    bucket: str,
    start: datetime,
    end: datetime,
    *,
    subject: str | None = None,
    subject_prefix: str | None = None,
) -> dict[str, Any]:
    """A metric's samples in [start, end) per subject (in order) and UTC bucket (in time order, only buckets with
    samples): count, sum, mean and p95. Samples found anomalous are included: they are real durations and spend."""
    if metric not in SERIES or bucket not in BUCKETS:
        raise BadRequestError(f"no series {metric!r} in {bucket!r} buckets")
    most = evaluation_settings().evaluation_series_max_points
    args: list[Any] = [metric, bucket, start, end, most + 1]
    where = ""
    if subject is not None:
        args.append(subject)
        where = f" AND subject = ${len(args)}"
    elif subject_prefix is not None:
        args.append(subject_prefix)
        where = f" AND starts_with(subject, ${len(args)})"
    rows = await db.fetch(
        f"""SELECT subject, date_trunc($2, at, 'UTC') AS at, count(*) AS count, sum(value) AS sum, avg(value) AS avg,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95
            FROM metrics WHERE name = $1 AND at >= $3 AND at < $4{where}
            GROUP BY 1, 2 ORDER BY 1, 2 LIMIT $5""",  # noqa: S608 - a fixed condition, values are bound
        *args,
        tenant_id=tenant_id,
    )
    if len(rows) > most:
        raise BadRequestError(
            f"more than {most} points: ask for fewer subjects (agent_id, subject_kind), a shorter range or day buckets"
        )
    points: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        points.setdefault(r["subject"], []).append(
            {
                "at": r["at"],
                "count": int(r["count"]),
                "sum": float(r["sum"]),
                "avg": float(r["avg"]),
                "p95": float(r["p95"]),
            }
        )
    return {
        "metric": metric,
        "bucket": bucket,
        "from": start,
        "to": end,
        "series": [{"subject": name, "points": found} for name, found in points.items()],
    }
