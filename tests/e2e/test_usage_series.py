"""The console's cost and quality charts through the local cloud: model spend per UTC day or hour split by model or
purpose (L04), and a quality metric's samples per agent and tool in hour or day buckets (L06)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Platform, Providers
from tests.e2e.test_evaluation import evaluations, eventually, new_agent, scored_tenant
from tests.e2e.test_model_gateway import GPT, HELLO, LLAMA
from tests.e2e.test_platform import assert_problem
from tests.e2e.test_runs import finished_run, outcome

pytestmark = pytest.mark.e2e

FIGURES = ("calls", "cache_hits", "input_tokens", "output_tokens", "cached_tokens", "cost_micro_usd")
DAY = re.compile(r"^\d{4}-\d\d-\d\d$")
HOUR = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:00Z$")


async def usage(platform: Platform, headers: dict[str, str], calls: int, **params: Any) -> dict[str, Any]:
    """The model usage summary once `calls` calls are in it (a scheduled flush may hold some for a moment)."""
    body: dict[str, Any] = {}
    for _ in range(100):
        answer = await platform.api.get("/v1/models/usage", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if body["totals"]["calls"] >= calls:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{calls} calls never showed in the usage: {body}")


def summed(groups: list[dict[str, Any]], by: str, figure: str) -> dict[str, int]:
    found: Counter[str] = Counter()
    for group in groups:
        found[group[by]] += group[figure]
    return dict(found)


async def test_model_spend_is_split_by_model_per_day_and_by_purpose_per_hour(
    platform: Platform, providers: Providers
) -> None:
    # GIVEN a tenant's three metered calls: gpt twice (25 micro-USD each), llama once (no price, so free)
    providers.reset()
    headers = platform.auth((await platform.new_tenant(f"spend-{uuid.uuid4().hex[:8]}"))["api_key"])
    for name, spec in (("gpt", GPT), ("llama", LLAMA)):
        made = await platform.api.post("/v1/models", json={"name": name, **spec}, headers=headers)
        assert made.status_code == 201, made.text
    for model, purpose in (("gpt", "draft"), ("gpt", "review"), ("llama", "draft")):
        answer = await platform.api.post(
            "/v1/models/chat",
            json={"model": model, "messages": HELLO, "cache": False, "purpose": purpose},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text

    # WHEN spend is asked per day, split by model
    by_day = await usage(platform, headers, 3, group_by="day", split_by="model")

    # THEN each group names its day and its model, in that order, and together they are the totals
    groups = by_day["groups"]
    assert (by_day["group_by"], by_day["split_by"]) == ("day", "model")
    assert [(g["key"], g["split"]) for g in groups] == sorted((g["key"], g["split"]) for g in groups)
    assert all(DAY.match(g["key"]) for g in groups), groups
    assert summed(groups, "split", "calls") == {"gpt": 2, "llama": 1}
    assert summed(groups, "split", "cost_micro_usd") == {"gpt": 50, "llama": 0}
    assert {f: sum(g[f] for g in groups) for f in FIGURES} == by_day["totals"]
    # AND the totals are those of the unsplit summary, whose groups carry no split
    by_model = await usage(platform, headers, 3, group_by="model")
    assert by_model["totals"] == by_day["totals"]
    assert by_model["split_by"] is None
    assert all("split" not in g for g in by_model["groups"])
    plain_day = await usage(platform, headers, 3, group_by="day")
    assert [g["key"] for g in plain_day["groups"]] == sorted({g["key"] for g in groups})

    # WHEN today's spend is asked per UTC hour, split by purpose
    today = datetime.now(UTC).date()
    span = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    by_hour = await usage(platform, headers, 3, group_by="hour", split_by="purpose", **span)

    # THEN the keys are UTC hours, this one or the last, and the purposes add up
    hours = {g["key"] for g in by_hour["groups"]}
    assert all(HOUR.match(h) for h in hours), hours
    now = datetime.now(UTC)
    recent = {f"{(now - timedelta(hours=n)):%Y-%m-%dT%H}:00Z" for n in range(2)}
    assert hours <= recent, (hours, recent)
    assert summed(by_hour["groups"], "split", "calls") == {"draft": 2, "review": 1}
    assert by_hour["totals"] == by_day["totals"]
    plain_hour = await usage(platform, headers, 3, group_by="hour", **span)
    assert sum(g["calls"] for g in plain_hour["groups"]) == 3
    assert all("split" not in g for g in plain_hour["groups"])

    # AND a split by what is already grouped, an unknown split and too long an hourly range are refused
    for same in ("model", "purpose"):
        refused = assert_problem(
            await platform.api.get("/v1/models/usage", params={"group_by": same, "split_by": same}, headers=headers),
            400,
        )
        assert "split_by" in refused["detail"]
    assert_problem(
        await platform.api.get("/v1/models/usage", params={"group_by": "day", "split_by": "run"}, headers=headers), 422
    )
    month = {"group_by": "hour", "to": today.isoformat()}
    too_long = await platform.api.get(
        "/v1/models/usage", params={**month, "from": (today - timedelta(days=31)).isoformat()}, headers=headers
    )
    assert "31 days" in assert_problem(too_long, 400)["detail"]
    longest = await platform.api.get(
        "/v1/models/usage", params={**month, "from": (today - timedelta(days=30)).isoformat()}, headers=headers
    )
    assert longest.status_code == 200, longest.text
    year = {"from": (today - timedelta(days=400)).isoformat(), "to": today.isoformat()}
    assert_problem(await platform.api.get("/v1/models/usage", params=year, headers=headers), 400)


def lines(answer: Any) -> dict[str, list[dict[str, Any]]]:
    assert answer.status_code == 200, answer.text
    return {s["subject"]: s["points"] for s in answer.json()["series"]}


async def test_quality_series_hold_each_agents_and_tools_samples(platform: Platform, providers: Providers) -> None:
    # GIVEN a run with an agent task and three tool tasks (text twice, python once), each scored
    providers.reset()
    headers = await scored_tenant(platform)
    agent = await new_agent(platform, headers, "You greet people.")
    plan = {
        "tasks": [
            {"task_id": "greet", "title": "Greet", "kind": "agent", "agent_id": agent["agent_id"],
             "instructions": "Say hello."},
            {"task_id": "up", "title": "Up", "kind": "tool", "tool": "text",
             "input": {"operation": "upper", "text": "abc"}},
            {"task_id": "down", "title": "Down", "kind": "tool", "tool": "text",
             "input": {"operation": "lower", "text": "ABC"}},
            {"task_id": "one", "title": "One", "kind": "tool", "tool": "python", "input": {"code": "result = 1"}},
        ]
    }  # fmt: skip
    submitted = await platform.api.post("/v1/goals", json={"text": "greet and shout", "plan": plan}, headers=headers)
    assert submitted.status_code == 202, submitted.text
    run = await finished_run(platform, headers, submitted.json()["goal_id"])
    assert run["status"] == "completed", outcome(run)

    async def all_scored() -> list[dict[str, Any]]:
        found = await evaluations(platform, headers, run_id=run["run_id"], subject_type="task")
        return found if len(found) == 4 else []

    scored = await eventually(all_scored, "the four tasks' evaluations")
    agent_subject = f"agent:{agent['agent_id']}"
    subject_of = {"greet": agent_subject, "up": "tool:text", "down": "tool:text", "one": "tool:python"}
    expected: dict[str, dict[str, float]] = {}
    for evaluation in scored:
        figures = expected.setdefault(subject_of[evaluation["task_id"]], {"count": 0, "duration": 0, "cost": 0})
        figures["count"] += 1
        figures["duration"] += evaluation["duration_ms"]
        figures["cost"] += evaluation["cost_micro_usd"]  # no judge here, so only the task's own spend
    assert expected[agent_subject]["cost"] > 0

    # WHEN the durations are asked for (day buckets over the last 7 days, by default)
    answer = await platform.api.get("/v1/quality/series", params={"metric": "task.duration_ms"}, headers=headers)

    # THEN there is a series per agent and tool, in subject order, counting and summing its samples
    durations = lines(answer)
    body = answer.json()
    assert (body["metric"], body["bucket"]) == ("task.duration_ms", "day")
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert (start.hour, start.minute) == (0, 0)
    assert timedelta(days=7) <= end - start < timedelta(days=8)
    assert list(durations) == sorted(expected) == [agent_subject, "tool:python", "tool:text"]
    for subject, points in durations.items():
        assert sum(p["count"] for p in points) == expected[subject]["count"], subject
        assert sum(p["sum"] for p in points) == pytest.approx(expected[subject]["duration"]), subject
        assert [p["at"] for p in points] == sorted(p["at"] for p in points)
        for point in points:
            at = datetime.fromisoformat(point["at"])
            assert (at.utcoffset(), at.hour, at.minute) == (timedelta(0), 0, 0)
            assert point["avg"] == pytest.approx(point["sum"] / point["count"])
            assert 0 <= point["p95"] <= point["sum"]
    [python] = durations["tool:python"]
    assert python["p95"] == pytest.approx(python["sum"])  # one sample: its own 95th percentile

    # AND the cost series holds the agent's spend and the tools' nothing
    costs = lines(
        await platform.api.get("/v1/quality/series", params={"metric": "task.cost_micro_usd"}, headers=headers)
    )
    assert {s: sum(p["sum"] for p in points) for s, points in costs.items()} == pytest.approx(
        {s: figures["cost"] for s, figures in expected.items()}
    )

    # AND hour buckets over today count the same samples, each point at the start of a UTC hour
    today = datetime.now(UTC).date()
    since = {"metric": "task.duration_ms", "bucket": "hour", "from": (today - timedelta(days=1)).isoformat()}
    hourly = lines(await platform.api.get("/v1/quality/series", params=since, headers=headers))
    assert {s: sum(p["count"] for p in points) for s, points in hourly.items()} == {
        s: figures["count"] for s, figures in expected.items()
    }
    assert all(datetime.fromisoformat(p["at"]).minute == 0 for points in hourly.values() for p in points)

    # AND the filters keep one agent's series, or the tools'
    metric = {"metric": "task.duration_ms"}
    only_agent = {**metric, "agent_id": agent["agent_id"]}
    assert list(lines(await platform.api.get("/v1/quality/series", params=only_agent, headers=headers))) == [
        agent_subject
    ]
    only_tools = {**metric, "subject_kind": "tool"}
    assert list(lines(await platform.api.get("/v1/quality/series", params=only_tools, headers=headers))) == [
        "tool:python",
        "tool:text",
    ]
    other = {**metric, "agent_id": str(uuid.uuid4())}
    assert lines(await platform.api.get("/v1/quality/series", params=other, headers=headers)) == {}
    long_ago = {**metric, "from": "2020-01-01", "to": "2020-01-31T12:00:00Z"}
    past = await platform.api.get("/v1/quality/series", params=long_ago, headers=headers)
    assert lines(past) == {}
    assert (past.json()["from"], past.json()["to"]) == ("2020-01-01T00:00:00Z", "2020-01-31T12:00:00Z")


async def test_quality_series_refuse_bad_input(platform: Platform) -> None:
    headers = await scored_tenant(platform)

    async def asked(**params: Any) -> Any:
        return await platform.api.get("/v1/quality/series", params=params, headers=headers)

    assert_problem(await asked(), 422)  # the metric is required
    assert_problem(await asked(metric="task.tokens"), 422)  # sampled, but no series of the quality score
    assert_problem(await asked(metric="task.score", bucket="week"), 422)
    assert_problem(await asked(metric="task.score", subject_kind="team"), 422)
    assert_problem(await asked(metric="task.score", **{"from": "yesterday"}), 422)
    backwards = await asked(metric="task.score", **{"from": "2026-03-02", "to": "2026-03-01"})
    assert "before `to`" in assert_problem(backwards, 400)["detail"]
    assert_problem(await asked(metric="task.score", **{"from": "2026-03-01T10:00Z", "to": "2026-03-01T10:00Z"}), 400)
    month = await asked(metric="task.score", bucket="hour", **{"from": "2026-01-01", "to": "2026-02-01"})
    assert "31 days" in assert_problem(month, 400)["detail"]
    longest_hourly = await asked(metric="task.score", bucket="hour", **{"from": "2026-01-01", "to": "2026-01-31"})
    assert longest_hourly.status_code == 200, longest_hourly.text
    year = await asked(metric="task.score", **{"from": "2024-01-01", "to": "2025-01-01"})
    assert "366 days" in assert_problem(year, 400)["detail"]
    leap_year = await asked(metric="task.score", **{"from": "2024-01-01", "to": "2024-12-31"})
    assert leap_year.status_code == 200, leap_year.text
    contradiction = await asked(metric="task.score", agent_id=str(uuid.uuid4()), subject_kind="tool")
    assert_problem(contradiction, 400)
