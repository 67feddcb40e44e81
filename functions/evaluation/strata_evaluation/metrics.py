"""Metric samples and anomaly detection. Each finished task adds samples (duration, cost, tokens, score, success)
for its subject (`agent:<id>`, `tool:<name>`); a new sample of a watched metric is compared with its rolling
baseline (the subject's earlier samples in the window, less those found anomalous, so a run of outliers cannot
hide itself by shifting the baseline) by a z-score and by the baseline's IQR fences, and only when
both say it is out of line is it an anomaly. An anomaly raises an alert (AlertRaised) once: while that alert is
open further anomalous samples only count, and a series is not alerted again within the throttle period."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from strata.events.evaluation import AlertRaised
from strata.events.outbox import UnitOfWork
from strata_evaluation.settings import Anomalies

Z_CAP = 999.0  # a baseline with no spread makes any other value infinitely far; stored and shown as this


@dataclass(frozen=True)
class Finding:
    """Why a sample is anomalous."""

    value: float
    mean: float
    stdev: float
    z: float
    low_fence: float
    high_fence: float
    samples: int
    severity: str

    def message(self, metric: str, subject: str) -> str:
        direction = "above" if self.value > self.mean else "below"
        return (
            f"{metric} of {subject} is {self.value:g}, {direction} its baseline of {self.mean:.4g} "
            f"(z={self.z:.1f}, outside [{self.low_fence:.4g}, {self.high_fence:.4g}] over {self.samples} samples)"
        )

    def detail(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "stdev": self.stdev,
            "z": self.z,
            "low_fence": self.low_fence,
            "high_fence": self.high_fence,
            "samples": self.samples,
        }


@dataclass(frozen=True)
class Baseline:
    """A series' recent normal samples, summarised (what `assess` compares a new sample with)."""

    samples: int
    mean: float
    stdev: float
    q1: float
    q3: float

    @classmethod
    def of(cls, values: list[float]) -> Baseline:
        """The same summary Postgres computes (population stdev; quartiles interpolated as percentile_cont)."""
        if len(values) < 2:
            only = values[0] if values else 0.0
            return cls(len(values), only, 0.0, only, only)
        mean = statistics.fmean(values)
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(len(values), mean, statistics.pstdev(values, mu=mean), q1, q3)


def assess(value: float, baseline: Baseline | list[float], rules: Anomalies) -> Finding | None:
    """The finding when `value` is anomalous against `baseline` (None when normal or the baseline is too small)."""
    base = baseline if isinstance(baseline, Baseline) else Baseline.of(baseline)
    if base.samples < rules.min_samples:
        return None
    spread = base.q3 - base.q1
    low, high = base.q1 - rules.iqr_k * spread, base.q3 + rules.iqr_k * spread
    if low <= value <= high:
        return None
    # a baseline with no spread puts any other value infinitely far away
    unbounded = (value - base.mean) / base.stdev if base.stdev > 0 else math.copysign(math.inf, value - base.mean)
    z = max(-Z_CAP, min(Z_CAP, unbounded))
    if abs(z) < rules.z_warning:
        return None
    severity = "critical" if abs(z) >= rules.z_critical else "warning"
    return Finding(value, base.mean, base.stdev, z, low, high, base.samples, severity)


async def record(
    uow: UnitOfWork,
    tenant_id: UUID,
    correlation_id: str,
    subject: str,
    source: str,
    samples: Mapping[str, float],
    rules: Anomalies,
) -> list[AlertRaised]:
    """Add a task's samples (a redelivered task adds nothing) and check the watched ones against their baselines,
    inside the caller's transaction; the alerts raised (emitted with the transaction)."""
    conn = uow.conn
    names = list(samples)
    added = await conn.fetch(
        """INSERT INTO metrics (tenant_id, name, subject, value, source)
           SELECT strata_tenant(), n, $2, v, $3 FROM unnest($1::text[], $4::float8[]) AS s(n, v)
           ON CONFLICT DO NOTHING RETURNING name""",
        names,
        subject,
        source,
        [float(samples[n]) for n in names],
    )
    raised: list[AlertRaised] = []
    if not rules.enabled:
        return raised
    watched = sorted({r["name"] for r in added} & set(rules.metrics))
    if not watched:
        return raised
    baselines = await conn.fetch(
        """SELECT name, count(*) AS samples, avg(value) AS mean, coalesce(stddev_pop(value), 0) AS stdev,
                  percentile_cont(0.25) WITHIN GROUP (ORDER BY value) AS q1,
                  percentile_cont(0.75) WITHIN GROUP (ORDER BY value) AS q3
           FROM (SELECT name, value, row_number() OVER (PARTITION BY name ORDER BY at DESC) AS newest
                 FROM metrics WHERE name = ANY($1::text[]) AND subject = $2 AND source <> $3 AND NOT anomalous
                     AND at > now() - make_interval(secs => $4)) recent
           WHERE newest <= $5 GROUP BY name""",
        watched,
        subject,
        source,
        float(rules.window_s),
        rules.max_samples,
    )
    for row in baselines:
        name = row["name"]
        base = Baseline(
            int(row["samples"]), float(row["mean"]), float(row["stdev"]), float(row["q1"]), float(row["q3"])
        )
        finding = assess(float(samples[name]), base, rules)
        if finding is None:
            continue
        await conn.execute(
            "UPDATE metrics SET anomalous = true WHERE name = $1 AND subject = $2 AND source = $3",
            name,
            subject,
            source,
        )
        alert = await raise_alert(
            uow,
            tenant_id,
            correlation_id,
            kind="anomaly",
            severity=finding.severity,
            dedup_key=f"anomaly:{name}:{subject}",
            subject=subject,
            metric=name,
            value=finding.value,
            baseline=finding.mean,
            message=finding.message(name, subject),
            detail=finding.detail(),
            throttle_s=rules.throttle_s,
        )
        if alert is not None:
            raised.append(alert)
    return raised


async def raise_alert(
    uow: UnitOfWork,
    tenant_id: UUID,
    correlation_id: str,
    *,
    kind: str,
    severity: str,
    dedup_key: str,
    subject: str,
    metric: str,
    value: float,
    baseline: float | None,
    message: str,
    detail: dict[str, Any],
    throttle_s: int,
) -> AlertRaised | None:
    """Raise an alert with AlertRaised, unless one with the same key is still open (then it counts one more
    occurrence) or was raised within `throttle_s`; the event when one was raised."""
    conn = uow.conn
    counted = await conn.fetchval(
        """UPDATE alerts SET occurrences = occurrences + 1, last_seen_at = now(), value = $2
           WHERE dedup_key = $1 AND status <> 'resolved' RETURNING true""",
        dedup_key,
        value,
    )
    if counted:
        return None
    recent = await conn.fetchval(
        "SELECT true FROM alerts WHERE dedup_key = $1 AND created_at > now() - make_interval(secs => $2) LIMIT 1",
        dedup_key,
        float(throttle_s),
    )
    if recent:
        return None
    alert_id = uuid4()
    inserted = await conn.fetchval(
        """INSERT INTO alerts (tenant_id, alert_id, kind, severity, dedup_key, subject, metric, value, baseline,
                               message, detail)
           VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (tenant_id, dedup_key) WHERE status <> 'resolved'
           DO UPDATE SET occurrences = alerts.occurrences + 1, last_seen_at = now()
           RETURNING alert_id = $1""",
        alert_id,
        kind,
        severity,
        dedup_key,
        subject,
        metric,
        value,
        baseline,
        message[:2000],
        detail,
    )
    if not inserted:
        return None
    subject_type, _, subject_id = subject.partition(":")
    event = AlertRaised(
        tenant_id=tenant_id,
        correlation_id=correlation_id,
        alert_id=alert_id,
        kind=kind,
        severity=severity,
        subject_type=subject_type[:50],
        subject_id=(subject_id or subject)[:200],
        metric=metric[:100],
        value=value,
        baseline=baseline,
        message=message[:2000],
    )
    await uow.emit(event)
    return event
