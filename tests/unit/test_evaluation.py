"""Evaluation's pure parts without a database: assertions on outputs, the deterministic checks, the anomaly test
(z-score and IQR fences must agree, a minimum baseline), quality scores (weights, bands, missing dimensions) and
the settings' validation, and the time window a quality series covers."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from strata.assertions import Assertion, check
from strata.errors import BadRequestError
from strata_evaluation.checks import expected_as_criteria, run_checks
from strata_evaluation.metrics import Z_CAP, assess
from strata_evaluation.quality import band, score, series_window
from strata_evaluation.settings import Anomalies, TenantEvaluationSettings, Weights

OUTPUT = {"total": 10, "ratio": 0.5, "areas": ["billing", "search"], "summary": "Revenue is UP", "ok": True}


@pytest.mark.parametrize(
    ("assertion", "holds"),
    [
        ({"path": "total", "op": "equals", "value": 10.0}, True),
        ({"path": "ok", "op": "equals", "value": 1}, False),  # JSON: true is not 1
        ({"path": "areas.1", "op": "equals", "value": "search"}, True),
        ({"path": "areas", "op": "contains", "value": "billing"}, True),
        ({"path": "summary", "op": "contains", "value": "revenue is up"}, True),  # text: case aside
        ({"path": "summary", "op": "not_contains", "value": "down"}, True),
        ({"path": "summary", "op": "matches", "value": r"^Rev\w+"}, True),
        ({"path": "ratio", "op": "gt", "value": 0.5}, False),
        ({"path": "ratio", "op": "gte", "value": 0.5}, True),
        ({"path": "total", "op": "lt", "value": 3}, False),
        ({"path": "areas", "op": "length_gte", "value": 2}, True),
        ({"path": "summary", "op": "length_lte", "value": 5}, False),
        ({"path": "missing", "op": "absent"}, True),
        ({"path": "areas.9", "op": "exists"}, False),
        ({"path": "total", "op": "type_is", "value": "integer"}, True),
        ({"path": "ok", "op": "type_is", "value": "number"}, False),
        ({"path": "total", "op": "one_of", "value": [1, 10]}, True),
        ({"path": "", "op": "type_is", "value": "object"}, True),
    ],
)
def test_assertions_hold_as_json_reads(assertion: dict[str, Any], holds: bool) -> None:
    found = check(Assertion.model_validate(assertion), OUTPUT)
    assert (found is None) is holds, found


def test_a_failed_assertion_says_why() -> None:
    assert check(Assertion(path="total", op="equals", value=3), OUTPUT) == "total is 10, not 3"
    assert check(Assertion(path="nope", op="equals", value=3), OUTPUT) == "nope is missing"
    assert (
        check(Assertion(path="total", op="contains", value="x"), OUTPUT)
        == "total is int, which cannot contain anything"
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"op": "exists", "value": 1},
        {"op": "gt", "value": "ten"},
        {"op": "gt", "value": True},
        {"op": "matches", "value": "("},
        {"op": "length_gte", "value": -1},
        {"op": "type_is", "value": "date"},
        {"op": "one_of", "value": 3},
        {"path": "a..b", "op": "exists"},
        {"op": "approximately", "value": 1},
    ],
)
def test_malformed_assertions_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Assertion.model_validate(bad)


def test_checks_score_the_schema_and_the_share_of_criteria_that_hold() -> None:
    criteria: list[dict[str, Any]] = [
        {"path": "total", "op": "equals", "value": 10},
        {"path": "areas", "op": "contains", "value": "legal", "description": "legal is covered"},
    ]
    found = run_checks(OUTPUT, {"type": "object", "required": ["total"]}, criteria)
    assert found.scores == {"schema": 1.0, "criteria": 0.5}
    assert found.failed == ["criteria"]
    assert "1 of 2 criteria hold" in found.reasons["criteria"]
    assert "legal is covered" in found.reasons["criteria"]
    assert [c["passed"] for c in found.checks] == [True, False]
    wrong = run_checks({"total": "ten"}, {"type": "object", "properties": {"total": {"type": "integer"}}}, [])
    assert wrong.scores == {"schema": 0.0}
    assert "at total" in wrong.reasons["schema"]
    assert run_checks(OUTPUT, None, []).scores == {}  # nothing asked, nothing scored


def test_an_expected_object_is_checked_field_by_field() -> None:
    criteria = expected_as_criteria({"total": 10, "ok": False})
    found = run_checks(OUTPUT, None, criteria)
    assert found.scores["criteria"] == 0.5  # partial credit
    assert expected_as_criteria(7) == [
        {"path": "", "op": "equals", "value": 7, "description": "the output is as expected"}
    ]


RULES = Anomalies(min_samples=30)


def _baseline(n: int = 100, mean: float = 100.0, spread: float = 5.0) -> list[float]:
    rng = random.Random(7)
    return [rng.gauss(mean, spread) for _ in range(n)]


def test_an_anomaly_needs_both_the_z_score_and_the_iqr_fences() -> None:
    baseline = _baseline()
    assert assess(101.0, baseline, RULES) is None  # ordinary
    far = assess(140.0, baseline, RULES)
    assert far is not None
    assert far.severity == "critical"  # z about 8
    assert far.samples == 100
    assert far.high_fence < 140
    assert "above its baseline" in far.message("task.duration_ms", "agent:a")
    # outside the fences but within three standard deviations of a heavy-tailed baseline: not an anomaly
    heavy = [*([100.0] * 60), *([0.0, 400.0] * 20)]
    assert assess(260.0, heavy, RULES) is None


def test_no_verdict_on_a_small_baseline_and_a_flat_one_is_capped() -> None:
    assert assess(1e9, _baseline(n=29), RULES) is None
    flat = assess(5.0, [1.0] * 40, RULES)
    assert flat is not None
    assert flat.z == Z_CAP
    assert flat.severity == "critical"
    below = assess(-5.0, [1.0] * 40, RULES)
    assert below is not None
    assert below.z == -Z_CAP


def test_quality_weights_dimensions_and_bands() -> None:
    settings = TenantEvaluationSettings()
    stats: dict[str, dict[str, float]] = {
        "task.score": {"count": 20, "mean": 0.9, "p95": 1.0},
        "task.duration_ms": {"count": 20, "mean": 2000, "p95": 17_500},  # halfway from 5 s to 30 s
        "task.cost_micro_usd": {"count": 20, "mean": 250_000, "p95": 300_000},
        "task.succeeded": {"count": 20, "mean": 1.0, "p95": 1.0},
        "task.compliant": {"count": 20, "mean": 1.0, "p95": 1.0},
    }
    found = score(stats, settings)
    dims = found["dimensions"]
    assert dims["latency"]["score"] == pytest.approx(0.5)
    assert dims["cost"]["score"] == pytest.approx(0.75)
    assert found["overall"] == pytest.approx(100 * (0.3 * 0.9 + 0.25 * 0.5 + 0.15 * 0.75 + 0.2 + 0.1), abs=0.01)
    assert found["assessment"] == "good"
    assert found["completeness"] == 1.0
    # reliability at the floor scores 0; a missing dimension is left out and the rest scaled up
    stats["task.succeeded"]["mean"] = 0.9
    del stats["task.compliant"]
    partial = score(stats, settings)
    assert "compliance" not in partial["dimensions"]
    assert partial["dimensions"]["reliability"]["score"] == 0.0
    assert partial["completeness"] == pytest.approx(0.9)
    assert score({}, settings)["assessment"] == "insufficient_data"
    assert (band(80), band(79.99), band(60), band(59.9)) == ("good", "warning", "warning", "critical")


def test_settings_are_validated_whole() -> None:
    with pytest.raises(ValidationError, match=r"sum to 1\.1"):
        Weights(accuracy=0.4)
    with pytest.raises(ValidationError, match="latency_max_ms must be above"):
        TenantEvaluationSettings.model_validate({"targets": {"latency_target_ms": 10, "latency_max_ms": 5}})
    with pytest.raises(ValidationError, match="z_critical"):
        Anomalies(z_warning=5, z_critical=4)
    with pytest.raises(ValidationError):
        Anomalies(metrics=["task.anything"])


def test_a_series_window_reads_dates_as_whole_utc_days_and_is_bounded() -> None:
    now = datetime(2026, 3, 10, 13, 45, tzinfo=UTC)
    # by default the last 7 days, from the start of a bucket
    assert series_window("day", None, None, now) == (datetime(2026, 3, 3, tzinfo=UTC), now)
    assert series_window("hour", None, None, now) == (datetime(2026, 3, 3, 13, tzinfo=UTC), now)
    # a date is a whole UTC day, ending a range too; a datetime is an instant, UTC when it names no zone
    assert series_window("day", date(2026, 3, 1), date(2026, 3, 1), now) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    plus_two = timezone(timedelta(hours=2))
    assert series_window("hour", datetime(2026, 3, 1, 12, tzinfo=plus_two), datetime(2026, 3, 1, 14), now) == (
        datetime(2026, 3, 1, 10, tzinfo=UTC),
        datetime(2026, 3, 1, 14, tzinfo=UTC),
    )
    # the longest ranges: 31 days of hours, 366 of days
    assert series_window("hour", date(2026, 1, 1), date(2026, 1, 31), now)[1] == datetime(2026, 2, 1, tzinfo=UTC)
    assert series_window("day", date(2024, 1, 1), date(2024, 12, 31), now)[1] == datetime(2025, 1, 1, tzinfo=UTC)
    for bucket, start, end in (
        ("day", date(2026, 3, 2), date(2026, 3, 1)),
        ("day", now, now),
        ("hour", date(2026, 1, 1), date(2026, 2, 1)),
        ("day", date(2024, 1, 1), date(2025, 1, 1)),
    ):
        with pytest.raises(BadRequestError):
            series_window(bucket, start, end, now)
