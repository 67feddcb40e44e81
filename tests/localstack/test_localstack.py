"""The local cloud against LocalStack: the template's resources come from a CloudFormation stack on LocalStack, a goal
runs to completion with every event through LocalStack's EventBridge, and a consumer's failure lands in LocalStack's
dead-letter queue and is replayed through L01 and consumed."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from localstack import host
from localstack.init.strata_resources import derive_stack
from tests.conftest import ROOT
from tests.e2e.conftest import Platform
from tests.e2e.test_platform import eventually
from tests.e2e.test_runs import finished_run
from tests.localstack.conftest import start_localstack

pytestmark = pytest.mark.localstack

RUN_FLOW = {"GoalSubmitted", "PlanCreated", "PlanApproved", "RunStarted", "TaskReady", "TaskCompleted", "RunCompleted"}
TASKS = [
    {"task_id": "numbers", "title": "Numbers", "kind": "tool", "tool": "json_query",
     "input": {"data": {"n": [3, 4]}, "query": "n"}},
    {"task_id": "sum", "title": "Add them up", "kind": "tool", "tool": "python", "depends_on": ["numbers"],
     "input": {"code": "result = sum(inputs['n'])", "inputs": {"n": {"$from": "numbers", "path": "result"}}}},
]  # fmt: skip


def stack_resources(platform: Platform, stack: str) -> dict[str, dict[str, Any]]:
    pages = platform.aws("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack)
    return {r["LogicalResourceId"]: r for page in pages for r in page["StackResourceSummaries"]}


async def submit_goal(platform: Platform, correlation: str) -> tuple[dict[str, str], str]:
    """A fresh tenant's goal, planned from a template of two tool tasks, submitted over HTTP with `correlation` as
    its correlation id; (the tenant's headers, the goal's id)."""
    tenant = await platform.new_tenant(f"ls-{uuid.uuid4().hex[:8]}")
    headers = platform.auth(tenant["api_key"])
    name = f"t{uuid.uuid4().hex[:8]}"
    template = {"name": name, "patterns": [f"do {name}"], "parameters": {"type": "object"}, "body": {"tasks": TASKS}}
    made = await platform.api.post("/v1/plan-templates", json=template, headers=headers)
    assert made.status_code == 201, made.text
    submitted = await platform.api.post(
        "/v1/goals",
        json={"text": f"do {name}", "strategy": "template"},
        headers={**headers, "x-correlation-id": correlation},
    )
    assert submitted.status_code == 202, submitted.text
    return headers, str(submitted.json()["goal_id"])


@contextmanager
def witness_queue(platform: Platform) -> Iterator[str]:
    """A rule of the test's own on LocalStack's bus sending every Strata event to a queue: its URL."""
    events, sqs = platform.aws("events"), platform.aws("sqs")
    bus, name = platform.cloud.resource("EventBus"), f"witness-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": "strata."}]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "witness", "Arn": arn}])
    try:
        yield url
    finally:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["witness"])
        events.delete_rule(Name=name, EventBusName=bus)
        sqs.delete_queue(QueueUrl=url)


def drain(platform: Platform, url: str) -> list[dict[str, Any]]:
    """Every message now on the queue, taken off it (bodies decoded)."""
    sqs, found = platform.aws("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
        )
    return found


def peek(platform: Platform, url: str) -> list[dict[str, Any]]:
    """Every message now on the queue, left on it: received, then made visible again at once."""
    sqs, seen = platform.aws("sqs"), {}
    held: list[dict[str, Any]] = []
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageAttributeNames=["All"]
    ).get("Messages", []):
        held += messages
        seen.update({m["MessageId"]: m for m in messages})
    for start in range(0, len(held), 10):
        batch = held[start : start + 10]
        entries = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(batch)
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return list(seen.values())


async def event_log(platform: Platform, headers: dict[str, str], correlation: str) -> dict[str, str]:
    """L01's event log for one correlation id: event id -> detail type."""
    page = await platform.api.get("/v1/events", params={"correlation_id": correlation, "limit": 200}, headers=headers)
    assert page.status_code == 200, page.text
    return {item["event_id"]: item["detail_type"] for item in page.json()["items"]}


def test_the_template_resources_come_from_the_cloudformation_stack(
    platform: Platform, localstack: host.LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the stack the init hook derived from template.yaml and deployed on LocalStack
    plan = derive_stack((ROOT / "template.yaml").read_text(), localstack.stage)
    deployed = stack_resources(platform, localstack.stack_name)
    cloud = platform.cloud
    assert cloud.resolver is not None

    # THEN every resource of the derived stack was created by CloudFormation, and nothing else is in it
    assert {name: r["ResourceStatus"] for name, r in deployed.items()} == dict.fromkeys(
        plan["template"]["Resources"], "CREATE_COMPLETE"
    )
    # AND every non-Lambda resource of the template the local cloud provisions is the stack's, not its own
    provisioned = {name for name in cloud.template.resources if name in cloud.resolver.physical}
    assert provisioned, "the local cloud provisioned nothing"
    assert {name: cloud.resolver.physical[name] for name in provisioned} == {
        name: deployed[name]["PhysicalResourceId"] for name in provisioned
    }
    # AND each function's EventBridge rule is the stack's rule with its stand-in queue, which the cloud drains
    for target in cloud.targets:
        queue = plan["stand_in_queues"][target.rule.logical_id]
        assert target.queue_url == deployed[queue]["PhysicalResourceId"]
        assert target.rule_arn.endswith(f"/{target.rule.name}")
    assert {t.rule.logical_id for t in cloud.targets} == set(plan["stand_in_queues"])
    # AND the cloud made no queue, rule or bucket of its own on LocalStack
    queues = set(platform.aws("sqs").list_queues().get("QueueUrls", []))
    assert queues <= {r["PhysicalResourceId"] for r in deployed.values() if r["ResourceType"] == "AWS::SQS::Queue"}
    rules = {r["Name"] for r in platform.aws("events").list_rules(EventBusName=cloud.resource("EventBus"))["Rules"]}
    stack_rules = {
        r["PhysicalResourceId"].split("|")[-1] for r in deployed.values() if r["ResourceType"] == "AWS::Events::Rule"
    }
    assert rules == stack_rules
    buckets = {b["Name"] for b in platform.aws("s3").list_buckets()["Buckets"]}
    assert buckets == {r["PhysicalResourceId"] for r in deployed.values() if r["ResourceType"] == "AWS::S3::Bucket"}

    # the table of where each resource of the translated template is
    rows = [
        (name, r["ResourceType"], f"CloudFormation on LocalStack ({localstack.stack_name})")
        for name, r in deployed.items()
    ]
    rows += [(name, kind, f"not in LocalStack: {why}") for name, (kind, why) in plan["excluded"].items()
             if kind != "AWS::Lambda::Permission"]  # fmt: skip
    permissions = sum(kind == "AWS::Lambda::Permission" for kind, _ in plan["excluded"].values())
    width = max(len(name) for name, _, _ in rows)
    kinds = max(len(kind) for _, kind, _ in rows)
    with capsys.disabled():
        where_from = f"stack {localstack.stack_name} at {localstack.endpoint}"
        print(f"\n\nWhere template.yaml's resources (as SAM translates them) are ({where_from}):")
        for name, kind, where in sorted(rows, key=lambda row: (not row[2].startswith("Cloud"), row[0])):
            print(f"  {name:<{width}}  {kind:<{kinds}}  {where}")
        print(f"  (and {permissions} AWS::Lambda::Permission: no Lambda here; the local cloud's front invokes them)")


async def test_a_goal_runs_to_completion_with_every_event_through_localstacks_eventbridge(
    platform: Platform, localstack: host.LocalStack
) -> None:
    # GIVEN the local cloud on LocalStack, not moto: every function publishes to LocalStack's bus
    services = platform.cloud.services
    assert services.aws_endpoint_url == localstack.endpoint
    assert not [line for line in services.embedded if "moto" in line], services.embedded
    bus = platform.cloud.resource("EventBus")
    for pool in platform.cloud.pools.values():
        assert (pool.env["AWS_ENDPOINT_URL"], pool.env["STRATA_EVENT_BUS_NAME"]) == (localstack.endpoint, bus)
    correlation = f"ls-run-{uuid.uuid4()}"
    with witness_queue(platform) as witness:
        # WHEN a goal is submitted over HTTP to the front and runs to completion
        headers, goal_id = await submit_goal(platform, correlation)
        run = await finished_run(platform, headers, goal_id)
        assert run["status"] == "completed", run
        assert {t["task_id"]: t["output"]["result"] for t in run["tasks"]} == {"numbers": [3, 4], "sum": 7}

        # THEN every event L01 archived for the run went through LocalStack's EventBridge (the witness rule got it),
        # and L01 archived every event LocalStack delivered, until both settle on the same events
        witnessed: dict[str, str] = {}
        previous: list[dict[str, str]] = []

        async def settled() -> tuple[dict[str, str], dict[str, str]] | None:
            for event in drain(platform, witness):
                if event["detail"].get("correlation_id") == correlation:
                    witnessed[event["detail"]["event_id"]] = event["detail-type"]
            logged = await event_log(platform, headers, correlation)
            snapshot = [dict(witnessed), logged]
            done = logged == witnessed and set(logged.values()) >= RUN_FLOW and snapshot == previous
            previous[:] = snapshot
            return (logged, dict(witnessed)) if done else None

        logged, seen = await eventually(settled, timeout_s=60, what="L01's log and LocalStack's deliveries to agree")
    assert logged == seen
    assert sorted(logged.values()).count("TaskCompleted") == len(TASKS)
    assert all(seen_type in logged.values() for seen_type in RUN_FLOW)


async def test_a_consumer_failure_lands_in_localstacks_dlq_and_replays_through_l01(
    platform: Platform, localstack: host.LocalStack
) -> None:
    # GIVEN L06 taken out of service (reserved concurrency 0) and the DLQ's event source into L01 disabled for a
    # moment, so the dead letters can be read on LocalStack before L01 takes them
    cloud = platform.cloud
    assert cloud.router is not None
    evaluation = cloud.pools["EvaluationFunction"]
    score_work = next(t for t in cloud.targets if t.rule.name == "EvaluationFunction-ScoreWork")
    dlq_url = cloud.resource("EventsDeadLetterQueue")
    assert dlq_url == stack_resources(platform, localstack.stack_name)["EventsDeadLetterQueue"]["PhysicalResourceId"]
    correlation = f"ls-dlq-{uuid.uuid4()}"
    evaluation.throttled = True
    cloud.router.disabled_sources.add("DataFunction-DeadLetters")
    try:
        # WHEN a goal runs to completion while L06 cannot take its TaskCompleted and RunCompleted events
        headers, goal_id = await submit_goal(platform, correlation)
        run = await finished_run(platform, headers, goal_id)
        assert run["status"] == "completed", run

        # THEN after the rule's retries EventBridge's dead letters are on LocalStack's DLQ (read with boto3)
        async def dead_lettered() -> list[dict[str, Any]] | None:
            ours = [m for m in peek(platform, dlq_url) if correlation in m["Body"]]
            kinds = {json.loads(m["Body"])["detail-type"] for m in ours}
            return ours if {"TaskCompleted", "RunCompleted"} <= kinds and len(ours) == len(TASKS) + 1 else None

        messages = await eventually(dead_lettered, timeout_s=60, what="the run's events on LocalStack's DLQ")
        for message in messages:
            attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
            assert attributes["RULE_ARN"] == score_work.rule_arn
            assert attributes["ERROR_CODE"] == "TooManyRequestsException"
            assert attributes["RETRY_ATTEMPTS"] == str(score_work.rule.max_retries)
    finally:
        cloud.router.disabled_sources.discard("DataFunction-DeadLetters")
        evaluation.throttled = False
    evaluations = await platform.api.get("/v1/evaluations", params={"run_id": run["run_id"]}, headers=headers)
    assert evaluations.status_code == 200, evaluations.text
    assert evaluations.json()["items"] == []  # nothing was scored

    # WHEN L01 has taken them off the DLQ, and they are replayed through its dead-letter API
    message_ids = {m["MessageId"] for m in messages}

    async def kept() -> list[dict[str, Any]] | None:
        page = await platform.api.get("/v1/dead-letters", params={"limit": 200}, headers=headers)
        assert page.status_code == 200, page.text
        items = [d for d in page.json()["items"] if d["message_id"] in message_ids]
        return items if len(items) == len(message_ids) else None

    dead_letters = await eventually(kept, what="L01 to keep LocalStack's dead letters")
    assert {d["status"] for d in dead_letters} == {"pending"}
    assert {d["rule_arn"] for d in dead_letters} == {score_work.rule_arn}
    for item in dead_letters:
        replayed = await platform.api.post(f"/v1/dead-letters/{item['dead_letter_id']}/replay", headers=headers)
        assert replayed.status_code == 202, replayed.text

    # THEN L06 consumes them: the run and each of its tasks are scored, and the dead letters are marked replayed
    async def scored() -> list[dict[str, Any]] | None:
        page = await platform.api.get(
            "/v1/evaluations", params={"run_id": run["run_id"], "limit": 200}, headers=headers
        )
        items: list[dict[str, Any]] = page.json()["items"]
        return items if len(items) == len(TASKS) + 1 else None

    scores = await eventually(scored, timeout_s=60, what="L06 to score the replayed events")
    assert sorted(e["subject_type"] for e in scores) == ["run", *["task"] * len(TASKS)]
    after = [
        (await platform.api.get(f"/v1/dead-letters/{d['dead_letter_id']}", headers=headers)).json()
        for d in dead_letters
    ]
    assert {(d["status"], d["replay_count"]) for d in after} == {("replayed", 1)}
    assert not [m for m in peek(platform, dlq_url) if correlation in m["Body"]]  # and LocalStack's DLQ holds none


def test_the_launcher_stops_what_it_started(tmp_path: Path) -> None:
    # GIVEN a second, bare LocalStack beside the session's, on another free port
    began = time.monotonic()
    second = start_localstack(state_dir=tmp_path / "second", with_stack=False)
    assert host._get(f"{second.endpoint}/_localstack/health") is not None

    # WHEN it is stopped
    second.stop()

    # THEN its whole process group is gone and its port answers no more
    with pytest.raises(ProcessLookupError):
        os.killpg(second.pid, 0)
    assert host._get(f"{second.endpoint}/_localstack/health") is None
    assert time.monotonic() - began < 60
