"""L07 learning through the local cloud: scored runs become training examples (deduplicated, with lineage), a low
rating excludes a run and a correction becomes an example of its own; datasets split the examples reproducibly by
seed and export them to S3 in OpenAI's and Bedrock's fine-tuning formats, and a Bedrock customisation job is
submitted through boto3 (the local cloud's AWS emulator); a plan the model made for a goal that scored well becomes
a learned template, and a similar goal is then planned from it without a model call."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform, Providers
from tests.e2e.test_evaluation import eventually, is_judge, new_agent, scored_tenant
from tests.e2e.test_platform import assert_problem
from tests.e2e.test_runs import finished_run, outcome
from tests.support.provider_servers import RecordedRequest, Reply

pytestmark = pytest.mark.e2e

PLANNER_PROMPT = "You plan work for an agent platform"


def answer_by_task(request: RecordedRequest) -> Reply | None:
    """The agent's model: answers each task with the word it is asked to say."""
    messages = (request.body or {}).get("messages") or []
    if not messages or is_judge(request):
        return None
    task = str(messages[-1].get("content", ""))
    word = task.rsplit("Say ", 1)[-1].split(".")[0] if "Say " in task else "nothing"
    return Reply(json_answer={"said": word})


async def run_agent_goal(platform: Platform, headers: dict[str, str], agent_id: str, word: str) -> dict[str, Any]:
    plan = {"tasks": [{"task_id": "say", "title": "Say a word", "kind": "agent", "agent_id": agent_id,
                       "instructions": f"Say {word}."}]}  # fmt: skip
    submitted = await platform.api.post("/v1/goals", json={"text": f"say {word}", "plan": plan}, headers=headers)
    assert submitted.status_code == 202, submitted.text
    run = await finished_run(platform, headers, submitted.json()["goal_id"])
    assert run["status"] == "completed", outcome(run)
    return run


async def examples(platform: Platform, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    found = await platform.api.get("/v1/training-examples", params={"limit": 200, **params}, headers=headers)
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


async def test_feedback_examples_datasets_and_exports_round_trip(platform: Platform, providers: Providers) -> None:
    # GIVEN four scored runs of an agent (the fifth says what the first said: the same conversation)
    providers.reset()
    providers.openai.respond_with(answer_by_task)
    headers = await scored_tenant(platform)
    agent = await new_agent(platform, headers, "You say words.")
    words = ["alpha", "bravo", "charlie", "delta", "alpha"]
    runs = [await run_agent_goal(platform, headers, agent["agent_id"], w) for w in words]

    async def four() -> list[dict[str, Any]]:
        found = await examples(platform, headers)
        return found if len(found) >= 4 else []

    # THEN each distinct conversation is one example, with its lineage
    await eventually(four, "four training examples")
    await eventually(lambda: _evaluated(platform, headers, runs[-1]["run_id"]), "the last run's evaluation")
    found = await examples(platform, headers)
    assert len(found) == 4  # the repeated conversation is kept once
    first = next(e for e in found if e["run_id"] == runs[0]["run_id"])
    assert (first["source"], first["task_id"], first["agent_id"]) == ("run", "say", agent["agent_id"])
    assert first["goal_id"]
    assert first["score"] == 1.0
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][0]["content"] == "You say words."
    assert "Say alpha." in first["messages"][1]["content"]
    assert json.loads(first["messages"][-1]["content"]) == {"said": "alpha"} == first["output"]

    # WHEN a person rates bravo's run badly and corrects charlie's answer
    disliked = await platform.api.post(
        "/v1/feedback", json={"run_id": runs[1]["run_id"], "rating": 1, "comment": "wrong tone"}, headers=headers
    )
    assert disliked.status_code == 201, disliked.text
    corrected = await platform.api.post(
        "/v1/feedback",
        json={"run_id": runs[2]["run_id"], "task_id": "say", "rating": 4, "label": "reviewed",
              "correction": {"said": "Charlie!"}},
        headers=headers,
    )  # fmt: skip
    assert corrected.status_code == 201, corrected.text
    # THEN bravo's example is excluded, charlie's is labelled, and the correction is an example of its own
    bravo = (await examples(platform, headers, run_id=runs[1]["run_id"]))[0]
    assert bravo["status"] == "excluded"
    assert "rated 1" in bravo["excluded_reason"]
    charlie = await examples(platform, headers, run_id=runs[2]["run_id"])
    by_source = {e["source"]: e for e in charlie}
    assert by_source["run"]["labels"] == ["reviewed"]
    correction = by_source["correction"]
    assert correction["output"] == {"said": "Charlie!"}
    assert correction["feedback_id"] == corrected.json()["feedback_id"]
    assert json.loads(correction["messages"][-1]["content"]) == {"said": "Charlie!"}
    listed = await platform.api.get("/v1/feedback", params={"run_id": runs[2]["run_id"]}, headers=headers)
    assert [f["label"] for f in listed.json()["items"]] == ["reviewed"]
    # bad feedback is refused
    nowhere = await platform.api.post("/v1/feedback", json={"run_id": str(uuid.uuid4()), "rating": 3}, headers=headers)
    assert_problem(nowhere, 404)
    loose = {"run_id": runs[0]["run_id"], "correction": {"said": "x"}}
    assert_problem(await platform.api.post("/v1/feedback", json=loose, headers=headers), 422)
    empty = {"run_id": runs[0]["run_id"]}
    assert_problem(await platform.api.post("/v1/feedback", json=empty, headers=headers), 422)
    tool_task = {"run_id": runs[0]["run_id"], "task_id": "nope", "correction": {"said": "x"}}
    assert_problem(await platform.api.post("/v1/feedback", json=tool_task, headers=headers), 404)

    # WHEN two datasets take the same examples with the same seed
    spec = {"splits": {"train": 0.5, "validation": 0.25, "test": 0.25}, "seed": 7, "stratify_by": "none"}
    one = await platform.api.post("/v1/datasets", json={"name": f"d1-{uuid.uuid4().hex[:6]}", **spec}, headers=headers)
    two = await platform.api.post("/v1/datasets", json={"name": f"d2-{uuid.uuid4().hex[:6]}", **spec}, headers=headers)
    assert one.status_code == 201, one.text
    assert two.status_code == 201, two.text
    # THEN they split the active examples the same way, in the ratios
    assert one.json()["counts"] == {"train": 2, "validation": 1, "test": 1}  # alpha, charlie, delta, the correction
    split_one = await _splits(platform, headers, one.json()["dataset_id"], 1)
    assert split_one == await _splits(platform, headers, two.json()["dataset_id"], 1)
    assert bravo["example_id"] not in split_one
    again = await platform.api.post(f"/v1/datasets/{one.json()['dataset_id']}/versions", headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["version"] == 2
    assert await _splits(platform, headers, one.json()["dataset_id"], 2) == split_one
    assert_problem(
        await platform.api.post("/v1/datasets", json={"name": "x", "splits": {"train": 0.9}}, headers=headers), 422
    )

    # WHEN version 1 is exported in both formats
    dataset_id = one.json()["dataset_id"]
    bucket = platform.cloud.resource("TrainingDataBucket")
    s3 = platform.aws("s3")
    for fmt in ("openai_chat", "bedrock_conversation"):
        made = await platform.api.post(
            f"/v1/datasets/{dataset_id}/versions/1/exports", json={"format": fmt}, headers=headers
        )
        assert made.status_code == 201, made.text
        files = made.json()["files"]
        assert {s: f["records"] for s, f in files.items()} == {"train": 2, "validation": 1, "test": 1}
        # THEN S3 holds one JSONL object per split in that format
        for split, file in files.items():
            key = file["uri"].removeprefix(f"s3://{bucket}/")
            lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
            assert len(lines) == file["records"], split
            for line in lines:
                record = json.loads(line)
                if fmt == "openai_chat":
                    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
                else:
                    assert record["schemaVersion"] == "bedrock-conversation-2024"
                    assert record["system"] == [{"text": "You say words."}]
                    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
                    assert "said" in record["messages"][1]["content"][0]["text"]
    exported = await platform.api.get(f"/v1/datasets/{dataset_id}/exports", headers=headers)
    assert len(exported.json()["items"]) == 2

    # WHEN a Bedrock customisation job is submitted for the version
    job = await platform.api.post(
        f"/v1/datasets/{dataset_id}/versions/1/fine-tunes",
        json={"base_model": "amazon.nova-micro-v1:0:128k", "custom_model": f"strata-{uuid.uuid4().hex[:6]}",
              "hyperparameters": {"epochCount": "2"}, "role_arn": "arn:aws:iam::123456789012:role/strata-tuning"},
        headers=headers,
    )  # fmt: skip
    # THEN Bedrock has it, with the exported data
    assert job.status_code == 202, job.text
    assert job.json()["job_arn"].startswith("arn:aws:bedrock:")
    bedrock = platform.aws("bedrock").get_model_customization_job(jobIdentifier=job.json()["job_name"])
    assert bedrock["trainingDataConfig"]["s3Uri"].endswith("/train.jsonl")
    assert bedrock["hyperParameters"] == {"epochCount": "2"}
    followed = await platform.api.get(f"/v1/fine-tunes/{job.json()['job_id']}", headers=headers)
    assert followed.status_code == 200
    assert followed.json()["status"] == bedrock["status"]
    roleless = {"base_model": "m", "custom_model": "c"}
    refused = await platform.api.post(
        f"/v1/datasets/{dataset_id}/versions/1/fine-tunes", json=roleless, headers=headers
    )
    assert_problem(refused, 422)
    missing = await platform.api.post(
        f"/v1/datasets/{dataset_id}/versions/9/exports", json={"format": "openai_chat"}, headers=headers
    )
    assert_problem(missing, 404)


async def _evaluated(platform: Platform, headers: dict[str, str], run_id: str) -> bool:
    found = await platform.api.get("/v1/evaluations", params={"run_id": run_id, "subject_type": "run"}, headers=headers)
    return any(e["status"] == "done" for e in found.json()["items"])


async def _splits(platform: Platform, headers: dict[str, str], dataset_id: str, version: int) -> dict[str, str]:
    found = await platform.api.get(f"/v1/datasets/{dataset_id}/versions/{version}/examples", headers=headers)
    assert found.status_code == 200, found.text
    return {e["example_id"]: e["split"] for e in found.json()}


def plan_uppercase(request: RecordedRequest) -> Reply | None:
    messages = (request.body or {}).get("messages") or []
    if not messages or not str(messages[0].get("content", "")).startswith(PLANNER_PROMPT):
        return None
    return Reply(json_answer={"tasks": [
        {"task_id": "up", "title": "Uppercase alpha", "kind": "tool", "tool": "text",
         "input": {"operation": "upper", "text": "alpha"}},
    ]})  # fmt: skip


async def test_a_goal_like_a_learned_one_is_planned_from_its_template_without_the_model(
    platform: Platform, providers: Providers
) -> None:
    # GIVEN a goal the model planned, which ran and scored well
    providers.reset()
    providers.openai.respond_with(plan_uppercase)
    headers = await scored_tenant(platform)
    first = await platform.api.post(
        "/v1/goals", json={"text": 'Uppercase the word "alpha" and report it'}, headers=headers
    )
    assert first.status_code == 202, first.text
    run = await finished_run(platform, headers, first.json()["goal_id"])
    assert run["status"] == "completed", outcome(run)
    planned_by_model = len(providers.openai.requests)
    assert planned_by_model == 1

    # THEN its plan is learned as an active template, with its lineage
    async def learned() -> list[dict[str, Any]]:
        found = await platform.api.get("/v1/plan-templates", params={"origin": "learned"}, headers=headers)
        items: list[dict[str, Any]] = found.json()["items"]
        return items

    [template] = await eventually(learned, "a learned template")
    assert template["patterns"] == ['Uppercase the word "{p1}" and report it']
    assert template["status"] == "active"
    assert template["lineage"]["run_id"] == run["run_id"]
    assert template["body"]["tasks"][0]["input"]["text"] == "{{p1}}"

    # WHEN a similar goal is submitted
    second = await platform.api.post(
        "/v1/goals", json={"text": 'Uppercase the word "beta" and report it'}, headers=headers
    )
    assert second.status_code == 202, second.text
    again = await finished_run(platform, headers, second.json()["goal_id"])
    # THEN it is planned from the template, without a model call, and runs with its own value
    assert again["status"] == "completed", outcome(again)
    assert again["tasks"][0]["output"]["result"] == "BETA"
    assert len(providers.openai.requests) == planned_by_model
    plans = (await platform.api.get(f"/v1/goals/{second.json()['goal_id']}/plans", headers=headers)).json()["items"]
    assert (plans[0]["strategy"], plans[0]["template_id"]) == ("template", template["template_id"])
    used = (await platform.api.get(f"/v1/plan-templates/{template['template_id']}", headers=headers)).json()
    assert used["used_count"] == 1
