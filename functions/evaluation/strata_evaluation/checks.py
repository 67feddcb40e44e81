"""Deterministic checks of a task's output: does it fit the task's output schema, and which of its success criteria
(assertions on the output) hold. Each check is a dimension in [0, 1] with the reasons behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strata import jsonschemas
from strata.assertions import Assertion, check


@dataclass
class Verdicts:
    """What the checks found: per dimension a score in [0, 1] and why, and every assertion with its outcome."""

    scores: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # dimensions that did not pass


def run_checks(output: Any, output_schema: dict[str, Any] | None, criteria: list[dict[str, Any]]) -> Verdicts:
    found = Verdicts()
    if output_schema:
        wrong = jsonschemas.first_error(output_schema, output)
        found.scores["schema"] = 0.0 if wrong else 1.0
        found.reasons["schema"] = f"the output does not fit the task's schema {wrong}" if wrong else "fits the schema"
        if wrong:
            found.failed.append("schema")
    if criteria:
        assertions = [Assertion.model_validate(c) for c in criteria]
        outcomes = [(a, check(a, output)) for a in assertions]
        held = sum(1 for _, why in outcomes if why is None)
        found.scores["criteria"] = held / len(assertions)
        misses = [f"{a.description or (a.path or 'output') + ' ' + a.op}: {why}" for a, why in outcomes if why]
        found.reasons["criteria"] = (
            f"{held} of {len(assertions)} criteria hold" + (": " + "; ".join(misses) if misses else "")
        )[:2000]
        found.checks = [
            {**a.model_dump(mode="json"), "passed": why is None, "reason": why or ""} for a, why in outcomes
        ]
        if held < len(assertions):
            found.failed.append("criteria")
    return found


def expected_as_criteria(expected: Any) -> list[dict[str, Any]]:
    """An evaluation case's expected output as assertions: each field of an expected object must equal its value
    (so a partly right answer gets partial credit), anything else must equal the whole output."""
    if isinstance(expected, dict) and expected:
        return [
            {"path": key, "op": "equals", "value": value, "description": f"{key} is as expected"}
            for key, value in expected.items()
        ]
    return [{"path": "", "op": "equals", "value": expected, "description": "the output is as expected"}]
