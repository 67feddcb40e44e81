"""L02's retry of a failed task, in its pure parts: when an operator may retry a task, and how the attempt budget
and the backoff count from the retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from strata_runtime.runs import ATTEMPT_LIMIT, attempts_left, backoff, retry_refusal

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def refusal(**changes: Any) -> str | None:
    """retry_refusal for task `b` of a failed run whose only failed task it is, with `changes`."""
    case: dict[str, Any] = {
        "run_status": "failed",
        "deadline": None,
        "statuses": {"a": "completed", "b": "failed", "c": "blocked", "d": "cancelled"},
        "task_id": "b",
        "attempt": 3,
        "max_attempts": 3,
        "now": NOW,
    }
    return retry_refusal(**(case | changes))


def test_a_failed_runs_only_failed_task_may_be_retried() -> None:
    assert refusal() is None
    assert refusal(deadline=NOW + timedelta(minutes=1)) is None


@pytest.mark.parametrize(
    ("changes", "because"),
    [
        ({"run_status": "cancelled"}, "cancelled run is never reopened"),
        ({"run_status": "completed"}, "the run is completed"),
        ({"run_status": "running"}, "the run is running"),
        ({"run_status": "paused"}, "the run is paused"),
        ({"task_id": "a"}, "task a is completed"),
        ({"task_id": "c"}, "task c is blocked"),
        ({"statuses": {"b": "failed", "e": "failed"}}, "tasks e failed too"),
        ({"deadline": NOW}, "deadline"),
        ({"attempt": ATTEMPT_LIMIT - 2}, f"the limit of {ATTEMPT_LIMIT}"),
    ],
)
def test_a_retry_is_refused_with_the_reason(changes: dict[str, Any], because: str) -> None:
    reason = refusal(**changes)

    assert reason is not None
    assert because in reason, reason


def test_the_attempt_budget_and_the_backoff_count_from_the_operators_last_retry() -> None:
    definition = {"retry": {"max_attempts": 2, "backoff_s": 1.0}}

    # before any retry: attempts 1 and 2
    assert [attempts_left(definition, attempt, 0) for attempt in (1, 2)] == [1, 0]
    # retried after attempt 2: attempts 3 and 4 are the new budget, backing off as the first two did
    assert [attempts_left(definition, attempt, 2) for attempt in (3, 4)] == [1, 0]
    assert backoff(definition, 3 - 2) == backoff(definition, 1) == 1.0
    assert backoff(definition, 4 - 2) == 2.0
