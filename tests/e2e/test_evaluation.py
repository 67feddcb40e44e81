"""L06 evaluation through the local cloud: a scripted agent run is scored as its checks and rubric say (schema,
criteria, the judge through the model gateway, compliance) and the run with it; a slow tool raises one anomaly
alert however many slow samples follow; a regression run over a dataset catches a deliberately worse version of an
agent against the earlier run, case by case; settings, datasets and regression runs refuse bad input."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from strata_cli.main import app
from tests.e2e.conftest import Platform, Providers
from tests.e2e.test_goals import GPT
from tests.e2e.test_platform import assert_problem
from tests.e2e.test_runs import finished_run, outcome, tenant
from tests.support.provider_servers import RecordedRequest, Reply

pytestmark = pytest.mark.e2e

JUDGE_PROMPT = "You are a strict evaluator"


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 30) -> Any:
    """Poll `probe` until it returns something truthy."""
    found: Any = None
    for _ in range(int(timeout_s * 10)):
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen: last saw {found!r}")


async def scored_tenant(platform: Platform) -> dict[str, str]:
    """A tenant with the scripted OpenAI-compatible model, which its judge uses too."""
    headers = await tenant(platform)
    assert (await platform.api.post("/v1/models", json=GPT, headers=headers)).status_code == 201
    changed = await platform.api.patch("/v1/evaluation-settings", json={"judge_model": "planner"}, headers=headers)
    assert changed.status_code == 200, changed.text
    return headers


async def new_agent(platform: Platform, headers: dict[str, str], system_prompt: str) -> dict[str, Any]:
    made = await platform.api.post(
        "/v1/agents",
        json={
            "name": f"agent-{uuid.uuid4().hex[:6]}",
            "system_prompt": system_prompt,
            "model": {"name": "planner"},
            "tools": [],
            "max_steps": 3,
        },
        headers=headers,
    )
    assert made.status_code == 201, made.text
    agent: dict[str, Any] = made.json()
    return agent


def is_judge(request: RecordedRequest) -> bool:
    messages = (request.body or {}).get("messages") or [{}]
    return str(messages[0].get("content", "")).startswith(JUDGE_PROMPT)


async def evaluations(platform: Platform, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    found = await platform.api.get("/v1/evaluations", params={"limit": 200, **params}, headers=headers)
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


async def events_of(platform: Platform, headers: dict[str, str], detail_type: str) -> list[dict[str, Any]]:
    found = await platform.api.get("/v1/events", params={"detail_type": detail_type, "limit": 100}, headers=headers)
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


async def test_a_scripted_run_scores_what_its_checks_and_rubric_say(platform: Platform, providers: Providers) -> None:
    # GIVEN an agent whose answer fits the schema, meets two of three criteria, and a judge that gives it 4 of 5
    providers.reset()
    headers = await scored_tenant(platform)
    agent = await new_agent(platform, headers, "You summarise sales.")
    answer = {"total": 10, "areas": ["billing"], "summary": "Revenue is up in billing."}
    providers.openai.respond_with(
        lambda r: (
            Reply(json_answer={"score": 4, "reason": "clear, misses one area"})
            if is_judge(r)
            else Reply(json_answer=answer)
        )
    )
    plan = {
        "tasks": [
            {"task_id": "sum", "title": "Summarise the quarter", "kind": "agent", "agent_id": agent["agent_id"],
             "instructions": "Total the sales and name the areas.",
             "output_schema": {"type": "object", "required": ["total", "areas", "summary"]},
             "success_criteria": [
                 {"path": "total", "op": "equals", "value": 10},
                 {"path": "areas", "op": "contains", "value": "search", "description": "search is covered"},
                 {"path": "summary", "op": "contains", "value": "revenue"},
             ],
             "rubric": "Names every area with sales and says how revenue moved."},
            {"task_id": "shout", "title": "Shout", "kind": "tool", "tool": "text", "depends_on": ["sum"],
             "input": {"operation": "upper", "text": {"$from": "sum", "path": "summary"}}},
        ]
    }  # fmt: skip
    # WHEN the goal runs to completion
    submitted = await platform.api.post("/v1/goals", json={"text": "summarise Q3", "plan": plan}, headers=headers)
    assert submitted.status_code == 202, submitted.text
    run = await finished_run(platform, headers, submitted.json()["goal_id"])
    assert run["status"] == "completed", outcome(run)

    # THEN the agent's task has the scores its checks and the judge say
    async def run_scored() -> list[dict[str, Any]]:
        found = await evaluations(platform, headers, run_id=run["run_id"], subject_type="run")
        return [e for e in found if e["status"] == "done"]

    [scored_run] = await eventually(run_scored, "the run's evaluation")
    by_task = {e["task_id"]: e for e in await evaluations(platform, headers, run_id=run["run_id"], subject_type="task")}
    task = by_task["sum"]
    assert task["scores"] == pytest.approx({"schema": 1.0, "criteria": 2 / 3, "judge": 0.75, "compliance": 1.0})
    assert task["score"] == pytest.approx((1 + 2 / 3 + 0.75 + 1) / 4)
    assert task["passed"] is False  # a criterion failed
    assert "2 of 3 criteria hold" in task["reasons"]["criteria"]
    assert "search is covered" in task["reasons"]["criteria"]
    assert task["reasons"]["judge"].startswith("4/5")
    assert [c["passed"] for c in task["checks"]] == [True, False, True]
    assert task["judge"]["model"] == "planner"
    assert task["judge"]["score"] == 4
    assert task["judge"]["cost_micro_usd"] > 0  # metered like any call: 11 input and 7 output tokens at $1/$2
    assert task["agent_id"] == agent["agent_id"]
    judged = [r for r in providers.openai.requests if is_judge(r)]
    assert len(judged) == 1
    assert "Names every area" in judged[0].body["messages"][1]["content"]
    assert judged[0].body["response_format"]["type"] == "json_schema"
    # the tool task had nothing to check: evaluated, no dimension, passed
    assert (by_task["shout"]["scores"], by_task["shout"]["passed"]) == ({}, True)
    # the run: the mean of its tasks' scores, not passed, each dimension averaged, completion 1
    assert scored_run["score"] == pytest.approx(task["score"])
    assert scored_run["passed"] is False
    assert scored_run["scores"]["completion"] == 1.0
    assert scored_run["cost_micro_usd"] >= task["judge"]["cost_micro_usd"]
    one = await platform.api.get(f"/v1/evaluations/{task['evaluation_id']}", headers=headers)
    assert one.status_code == 200
    assert one.json()["checks"] == task["checks"]
    # the events carry the same
    evaluated = await eventually(
        lambda: events_of(platform, headers, "TaskEvaluated"), "TaskEvaluated in the event log"
    )
    assert [e["detail"]["task_id"] for e in evaluated] == ["sum"]
    assert evaluated[0]["detail"]["scores"] == task["scores"]
    [run_event] = await eventually(lambda: events_of(platform, headers, "RunEvaluated"), "RunEvaluated")
    assert run_event["detail"]["passed"] is False
    assert run_event["detail"]["failed_checks"] == 1
    # and the agent's quality score counts it
    quality = (await platform.api.get(f"/v1/quality/agents/{agent['agent_id']}", headers=headers)).json()
    assert quality["dimensions"]["accuracy"]["score"] == pytest.approx(task["score"])
    assert quality["dimensions"]["reliability"]["raw"]["success_rate"] == 1.0
    assert quality["assessment"] in ("good", "warning", "critical")
    history = await platform.api.get("/v1/quality/scores", params={"agent_id": agent["agent_id"]}, headers=headers)
    assert history.status_code == 200
    assert history.json()["items"][0]["subject"] == f"agent:{agent['agent_id']}"


async def test_a_slow_tool_raises_one_anomaly_alert_however_many_slow_samples(platform: Platform) -> None:
    # GIVEN a baseline of 20 quick python tasks
    headers = await tenant(platform)
    changed = await platform.api.patch(
        "/v1/evaluation-settings", json={"anomalies": {"min_samples": 20}}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    quick = [
        {"task_id": f"q{n}", "title": f"Quick {n}", "kind": "tool", "tool": "python", "input": {"code": "result = 1"}}
        for n in range(20)
    ]
    first = await platform.api.post(
        "/v1/goals",
        json={"text": "quick", "plan": {"tasks": quick}, "constraints": {"max_parallelism": 1}},
        headers=headers,
    )
    assert first.status_code == 202, first.text
    assert (await finished_run(platform, headers, first.json()["goal_id"]))["status"] == "completed"

    async def samples_in() -> bool:
        found = await evaluations(platform, headers, subject_type="task")
        return len(found) >= 20

    await eventually(samples_in, "20 task evaluations")
    # WHEN three slow tasks of the same tool finish
    slow = [
        {"task_id": f"s{n}", "title": f"Slow {n}", "kind": "tool", "tool": "python",
         "input": {"code": "import time\ntime.sleep(1.2)\nresult = 1"}}
        for n in range(3)
    ]  # fmt: skip
    second = await platform.api.post(
        "/v1/goals",
        json={"text": "slow", "plan": {"tasks": slow}, "constraints": {"max_parallelism": 1}},
        headers=headers,
    )
    assert second.status_code == 202, second.text
    assert (await finished_run(platform, headers, second.json()["goal_id"]))["status"] == "completed"

    # THEN one alert is open for the series, counting all three, and AlertRaised went out once
    async def counted() -> list[dict[str, Any]]:
        found = await platform.api.get("/v1/alerts", params={"kind": "anomaly"}, headers=headers)
        items: list[dict[str, Any]] = found.json()["items"]
        return items if items and items[0]["occurrences"] == 3 else []

    durations = [e["duration_ms"] for e in await evaluations(platform, headers, subject_type="task")]
    [alert] = await eventually(counted, f"an anomaly alert seen three times (durations {durations})")
    assert (alert["metric"], alert["subject"], alert["status"]) == ("task.duration_ms", "tool:python", "open")
    assert alert["value"] >= 1200
    assert alert["baseline"] < 1200
    assert alert["detail"]["samples"] >= 20
    assert alert["detail"]["z"] >= 3
    assert alert["severity"] in ("warning", "critical")
    raised = await eventually(lambda: events_of(platform, headers, "AlertRaised"), "AlertRaised")
    await asyncio.sleep(0.5)
    assert len(await events_of(platform, headers, "AlertRaised")) == len(raised) == 1
    # resolving it is recorded; a second resolve conflicts
    resolved = await platform.api.patch(f"/v1/alerts/{alert['alert_id']}", json={"status": "resolved"}, headers=headers)
    assert resolved.status_code == 200
    assert resolved.json()["resolved_at"]
    again = await platform.api.patch(f"/v1/alerts/{alert['alert_id']}", json={"status": "resolved"}, headers=headers)
    assert_problem(again, 409)


ADD = re.compile(r"Add (\d+) and (\d+)")


def arithmetic_agent(request: RecordedRequest) -> Reply | None:
    """The agent's model: adds the case's numbers; the 'sloppy' version gets every odd first number wrong."""
    messages = (request.body or {}).get("messages") or []
    if not messages or is_judge(request):
        return None
    found = ADD.search(str(messages[-1].get("content", "")))
    if found is None:
        return None
    a, b = int(found.group(1)), int(found.group(2))
    sloppy = "sloppy" in str(messages[0].get("content", ""))
    return Reply(json_answer={"sum": a + b + (1 if sloppy and a % 2 else 0)})


async def finished_eval_run(platform: Platform, headers: dict[str, str], eval_run_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        found: dict[str, Any] = (await platform.api.get(f"/v1/eval-runs/{eval_run_id}", headers=headers)).json()
        return found if found["status"] == "completed" else None

    finished: dict[str, Any] = await eventually(done, f"regression run {eval_run_id}", timeout_s=90)
    return finished


async def test_a_regression_run_catches_a_worse_agent_version(platform: Platform, providers: Providers) -> None:
    # GIVEN a dataset of four sums and an agent that adds correctly
    providers.reset()
    providers.openai.respond_with(arithmetic_agent)
    headers = await scored_tenant(platform)
    agent = await new_agent(platform, headers, "You add numbers carefully.")
    cases = [{"case_id": f"add-{a}-{b}", "input": f"Add {a} and {b}.", "expected": {"sum": a + b}}
             for a, b in ((1, 2), (2, 2), (3, 4), (4, 4))]  # fmt: skip
    dataset = await platform.api.post(
        "/v1/eval-datasets",
        json={
            "name": f"sums-{uuid.uuid4().hex[:6]}",
            "instructions": "Answer with the sum as JSON.",
            "output_schema": {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]},
            "cases": cases,
        },
        headers=headers,
    )
    assert dataset.status_code == 201, dataset.text
    dataset_id = dataset.json()["dataset_id"]
    # WHEN it is run over the dataset (the baseline)
    first = await platform.api.post(
        "/v1/eval-runs", json={"dataset_id": dataset_id, "agent_id": agent["agent_id"]}, headers=headers
    )
    assert first.status_code == 202, first.text
    baseline = await finished_eval_run(platform, headers, first.json()["eval_run_id"])
    # THEN every case passes and the gate passes
    assert [c["status"] for c in baseline["cases"]] == ["passed"] * 4, baseline["cases"]
    assert (baseline["score"], baseline["pass_rate"], baseline["gate"]) == (1.0, 1.0, "passed")
    assert baseline["baseline_id"] is None
    assert baseline["agent_version"] == 1
    assert all(c["run_id"] and c["output"] for c in baseline["cases"])

    # GIVEN a sloppier version of the same agent
    worse = await platform.api.patch(
        f"/v1/agents/{agent['agent_id']}",
        json={"system_prompt": "You add numbers, sloppy and fast."},
        headers=headers,
    )
    assert worse.status_code == 200, worse.text
    # WHEN it is run over the same dataset, compared with the last passing run
    second = await platform.api.post(
        "/v1/eval-runs", json={"dataset_id": dataset_id, "agent_id": agent["agent_id"]}, headers=headers
    )
    assert second.status_code == 202, second.text
    regressed = await finished_eval_run(platform, headers, second.json()["eval_run_id"])
    # THEN the gate fails, naming the drop and the cases that regressed
    assert regressed["agent_version"] == 2
    assert regressed["baseline_id"] == baseline["eval_run_id"]
    assert regressed["gate"] == "failed"
    assert regressed["pass_rate"] == 0.5
    assert regressed["delta"] == pytest.approx(regressed["score"] - 1.0)
    assert regressed["delta"] < -0.05
    assert "add-1-2, add-3-4" in " ".join(regressed["gate_reasons"])
    changes = {c["case_id"]: c["change"] for c in regressed["cases"]}
    assert changes == {"add-1-2": "regressed", "add-2-2": "unchanged", "add-3-4": "regressed", "add-4-4": "unchanged"}
    wrong = next(c for c in regressed["cases"] if c["case_id"] == "add-1-2")
    assert wrong["output"] == {"sum": 4}
    assert "sum is 4, not 3" in wrong["reasons"]["criteria"]
    # and a regression alert and EvalRunCompleted went out
    alerts = (await platform.api.get("/v1/alerts", params={"kind": "regression"}, headers=headers)).json()["items"]
    assert [a["subject"] for a in alerts] == [f"agent:{agent['agent_id']}"]

    async def both_completed() -> list[str]:
        found = await events_of(platform, headers, "EvalRunCompleted")
        return sorted(e["detail"]["gate"] for e in found) if len(found) == 2 else []

    assert await eventually(both_completed, "EvalRunCompleted for both runs") == ["failed", "passed"]
    listed = await platform.api.get("/v1/eval-runs", params={"dataset_id": dataset_id}, headers=headers)
    assert [r["eval_run_id"] for r in listed.json()["items"]] == [regressed["eval_run_id"], baseline["eval_run_id"]]
    # and the CLI's gate, as a CI job would run it, fails too (the sloppy agent against the last passing run)
    gate = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["eval-gate", "--dataset", dataset_id, "--agent", agent["agent_id"], "--timeout", "90",
         "--url", platform.cloud.front_url, "--key", headers["authorization"].removeprefix("Bearer ")],
    )  # fmt: skip
    assert gate.exit_code == 1, gate.output
    assert "gate failed" in gate.output
    assert "regressed" in gate.output


async def test_bad_settings_datasets_and_regression_runs_are_refused(platform: Platform) -> None:
    headers = await tenant(platform)
    defaults = await platform.api.get("/v1/evaluation-settings", headers=headers)
    assert defaults.status_code == 200
    assert defaults.headers["etag"] == '"v0"'
    assert defaults.json()["weights"]["accuracy"] == 0.3
    lopsided = {"accuracy": 0.5, "latency": 0.5, "cost": 0.5, "reliability": 0, "compliance": 0}
    bad = await platform.api.patch("/v1/evaluation-settings", json={"weights": lopsided}, headers=headers)
    assert_problem(bad, 422)
    assert "sum to 1.5" in bad.json()["detail"]
    stale = await platform.api.patch(
        "/v1/evaluation-settings", json={"pass_score": 0.7}, headers={**headers, "If-Match": '"v3"'}
    )
    assert_problem(stale, 412)
    inverted = await platform.api.patch(
        "/v1/evaluation-settings", json={"targets": {"latency_target_ms": 9000, "latency_max_ms": 100}}, headers=headers
    )
    assert_problem(inverted, 422)
    assert (await platform.api.get("/v1/evaluation-settings", headers=headers)).headers["etag"] == '"v0"'

    def dataset(**changes: Any) -> dict[str, Any]:
        return {"name": f"d-{uuid.uuid4().hex[:6]}", "cases": [{"case_id": "a", "input": "x", "expected": 1}]} | changes

    twice = dataset(
        cases=[{"case_id": "a", "input": "x", "expected": 1}, {"case_id": "a", "input": "y", "expected": 2}]
    )
    assert_problem(await platform.api.post("/v1/eval-datasets", json=twice, headers=headers), 422)
    unscorable = dataset(cases=[{"case_id": "a", "input": "x"}])
    refused = await platform.api.post("/v1/eval-datasets", json=unscorable, headers=headers)
    assert_problem(refused, 422)
    assert "nothing to score it by" in refused.json()["detail"]
    broken = dataset(cases=[{"case_id": "a", "input": "x", "criteria": [{"op": "matches", "value": "("}]}])
    assert_problem(await platform.api.post("/v1/eval-datasets", json=broken, headers=headers), 422)
    bad_schema = dataset(output_schema={"type": "nonsense"})
    assert_problem(await platform.api.post("/v1/eval-datasets", json=bad_schema, headers=headers), 422)
    made = await platform.api.post("/v1/eval-datasets", json=dataset(), headers=headers)
    assert made.status_code == 201, made.text
    dataset_id = made.json()["dataset_id"]
    assert_problem(
        await platform.api.post("/v1/eval-datasets", json=dataset(name=made.json()["name"]), headers=headers), 409
    )
    changed = await platform.api.patch(
        f"/v1/eval-datasets/{dataset_id}", json={"rubric": "Be right."}, headers={**headers, "If-Match": '"v1"'}
    )
    assert changed.status_code == 200
    assert changed.json()["version"] == 2

    missing_dataset = {"dataset_id": str(uuid.uuid4()), "agent_id": str(uuid.uuid4())}
    assert_problem(await platform.api.post("/v1/eval-runs", json=missing_dataset, headers=headers), 404)
    missing_agent = {"dataset_id": dataset_id, "agent_id": str(uuid.uuid4())}
    assert_problem(await platform.api.post("/v1/eval-runs", json=missing_agent, headers=headers), 422)
    assert_problem(await platform.api.get(f"/v1/eval-runs/{uuid.uuid4()}", headers=headers), 404)
    assert_problem(await platform.api.get(f"/v1/alerts/{uuid.uuid4()}", headers=headers), 404)
    assert_problem(await platform.api.get(f"/v1/evaluations/{uuid.uuid4()}", headers=headers), 404)
    deleted = await platform.api.delete(f"/v1/eval-datasets/{dataset_id}", headers=headers)
    assert deleted.status_code == 204
    assert_problem(await platform.api.get(f"/v1/eval-datasets/{dataset_id}", headers=headers), 404)
