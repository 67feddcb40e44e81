"""The `strata` CLI against the local cloud: a goal submitted and followed to its summary (completed, failed, and
waiting on a human's approval that another key gives), runs listed and shown with their tasks and steps, paused,
resumed and cancelled, the event log tailed, API keys created, listed, rotated and revoked, and refused requests
shown with their status and detail (exit 2)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from strata_cli.main import app
from tests.e2e.conftest import Platform
from tests.e2e.test_runs import run_of, run_template

pytestmark = pytest.mark.e2e

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ROOT = Path(__file__).resolve().parents[2]


async def strata(platform: Platform, key: str, *args: str) -> Result:
    """Run the CLI (in a thread: it blocks) against the local cloud with `key`."""
    argv = [*args, "--api", platform.cloud.front_url, "--key", key]

    def invoke() -> Result:
        return CliRunner().invoke(app, argv)

    return await asyncio.to_thread(invoke)


async def new_key(platform: Platform) -> str:
    """An admin key of a tenant of its own."""
    made = await platform.new_tenant(f"cli-{uuid.uuid4().hex[:8]}")
    return str(made["api_key"])


async def word_count_template(platform: Platform, key: str) -> None:
    """A template goals like "count the words of ..." match: two tasks, built-in tools only."""
    template = {
        "name": f"words-{uuid.uuid4().hex[:8]}",
        "patterns": ["count the words of {text}"],
        "parameters": {"type": "object", "properties": {"text": {"type": "string", "maxLength": 1000}}},
        "body": {
            "tasks": [
                {"task_id": "count", "title": "Count", "kind": "tool", "tool": "text",
                 "input": {"operation": "count", "text": "{{text}}"}},
                {"task_id": "words", "title": "Words", "kind": "tool", "tool": "json_query", "depends_on": ["count"],
                 "input": {"data": {"$from": "count", "path": "result"}, "query": "words"}},
            ]
        },
    }  # fmt: skip
    made = await platform.api.post("/v1/plan-templates", json=template, headers=platform.auth(key))
    assert made.status_code == 201, made.text


async def until_output(platform: Platform, key: str, args: list[str], text: str, timeout_s: float = 30) -> Result:
    """Run the command again until its output shows `text` (what it lists may take a moment to arrive)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await strata(platform, key, *args)
        assert result.exit_code == 0, result.output
        if text in result.output or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.3)


async def test_a_goal_followed_to_completion_then_its_run_steps_and_events(platform: Platform) -> None:
    # GIVEN a tenant whose template plans "count the words of ..." into two tool tasks
    key = await new_key(platform)
    await word_count_template(platform, key)

    # WHEN the CLI submits the goal and waits for it
    done = await strata(
        platform, key, "goal", "Count the words of 'the quick brown fox'", "--strategy", "template", "--wait",
        "--timeout", "90",
    )  # fmt: skip

    # THEN it exits 0 with the summary: status, tasks, duration, tokens, cost and the final output
    assert done.exit_code == 0, done.output
    found = re.search(rf"run ({UUID_PATTERN}): completed, 2/2 tasks in \d", done.output)
    assert found, done.output
    run_id = found.group(1)
    assert re.search(rf"goal {UUID_PATTERN}: completed", done.output), done.output
    assert "tokens 0 (0 in + 0 out), cost $0" in done.output
    assert 'words: {"result":4}' in done.output  # the run's last task, its output
    assert f"run {run_id} started: 2 tasks" in done.output

    # the run is listed (and not among the failed ones)
    listed = await strata(platform, key, "runs")
    assert listed.exit_code == 0, listed.output
    assert run_id in listed.output
    assert "2/2" in listed.output
    failed_only = await strata(platform, key, "runs", "--status", "failed")
    assert failed_only.exit_code == 0, failed_only.output
    assert run_id not in failed_only.output
    as_json = await strata(platform, key, "runs", "--status", "completed", "--limit", "1", "--json")
    assert [r["run_id"] for r in json.loads(as_json.output)] == [run_id]

    # its tasks, then one task's steps
    shown = await strata(platform, key, "run", "show", run_id)
    assert shown.exit_code == 0, shown.output
    assert f"Run {run_id}: completed, 2/2 tasks" in shown.output
    rows = {line.split("│")[1].strip(): line for line in shown.output.splitlines() if line.count("│") > 3}
    assert {"count", "words"} <= set(rows), shown.output
    assert "completed" in rows["count"], shown.output
    assert "1/3" in rows["count"], shown.output  # attempt 1 of 3
    steps = await strata(platform, key, "run", "show", run_id, "--steps", "count")
    assert steps.exit_code == 0, steps.output
    assert "Steps of task count" in steps.output
    assert re.search(r"│\s*1\s*│\s*0\s*│\s*tool\s*│", steps.output), steps.output  # attempt 1, step 0
    assert '"tool":"text"' in steps.output

    # the run's RunCompleted in the event log, after its tasks' TaskCompleted (newest last)
    tail = await until_output(platform, key, ["events", "tail", "--no-follow", "--type", "RunCompleted"], run_id)
    assert re.search(rf"RunCompleted\s+run:{run_id}", tail.output), tail.output
    args = ["events", "tail", "--no-follow", "--type", "TaskCompleted", "--type", "RunCompleted",
            "--aggregate-type", "run", "--aggregate-id", run_id]  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        both = await strata(platform, key, *args)
        kinds = [line.split()[2] for line in both.output.splitlines() if run_id in line]
        if kinds.count("TaskCompleted") == 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert kinds[-1] == "RunCompleted", both.output
    assert kinds.count("TaskCompleted") == 2, both.output
    stamps = [" ".join(line.split()[:2]) for line in both.output.splitlines() if run_id in line]
    assert stamps == sorted(stamps), both.output


async def test_a_failing_goal_exits_1_with_the_reason_then_its_task_is_retried(platform: Platform) -> None:
    key = await new_key(platform)
    name = f"t{uuid.uuid4().hex[:8]}"
    boom = {"task_id": "boom", "title": "Fails", "kind": "tool", "tool": "python",
            "input": {"code": "raise RuntimeError('no luck')"}, "retry": {"max_attempts": 1}}  # fmt: skip
    made = await platform.api.post(
        "/v1/plan-templates",
        json={"name": name, "patterns": [f"do {name}"], "parameters": {"type": "object"}, "body": {"tasks": [boom]}},
        headers=platform.auth(key),
    )
    assert made.status_code == 201, made.text

    failed = await strata(platform, key, "goal", f"do {name}", "--strategy", "template", "--wait", "--timeout", "90")

    assert failed.exit_code == 1, failed.output
    assert re.search(rf"goal {UUID_PATTERN}: failed", failed.output), failed.output
    assert re.search(rf"run {UUID_PATTERN}: failed, 0/1 tasks", failed.output), failed.output
    assert "task boom failed (attempt 1/1)" in failed.output
    assert "no luck" in failed.output
    run_id = re.findall(rf"run ({UUID_PATTERN}): failed", failed.output)[0]

    # an operator's retry reopens the failed run: the task is attempted again (and fails again: it always raises)
    retried = await strata(platform, key, "run", "retry", run_id, "boom", "--reason", "one more time")
    assert retried.exit_code == 0, retried.output
    assert f"run {run_id}: running" in retried.output
    again = await until_output(platform, key, ["run", "show", run_id], f"Run {run_id}: failed", timeout_s=60)
    row = next(line for line in again.output.splitlines() if line.startswith("│ boom "))
    assert "failed" in row, again.output
    assert "2/2" in row, again.output  # the second attempt, of the one more the retry allowed
    steps = await strata(platform, key, "run", "show", run_id, "--steps", "boom", "--json")
    assert [step["attempt"] for step in json.loads(steps.output)] == [1, 2]
    unknown_task = await strata(platform, key, "run", "retry", run_id, "nope")
    assert unknown_task.exit_code == 2, unknown_task.output
    assert f"answered 404 Not found: run {run_id} has no task 'nope'" in unknown_task.output


async def test_a_goal_waiting_for_approval_says_so_until_another_key_approves_it(platform: Platform) -> None:
    # GIVEN a tenant with a second key that may decide approvals, and a goal that asks for one
    key = await new_key(platform)
    await word_count_template(platform, key)
    made = await strata(platform, key, "keys", "create", "approver", "--scope", "approvals:decide", "--scope",
                        "approvals:read", "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    approver = json.loads(made.output)["api_key"]

    # WHEN the goal is followed in its own process (its output read as it comes)
    follower = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "strata_cli", "goal", "Count the words of 'wait for me'", "--strategy", "template",
        "--constraint", "require_approval=true", "--wait", "--timeout", "120",
        "--api", platform.cloud.front_url, "--key", key,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert follower.stdout is not None
    said: list[str] = []
    try:
        approval_id = None
        while approval_id is None:
            line = (await asyncio.wait_for(follower.stdout.readline(), 60)).decode()
            assert line, f"the follower ended before it waited for an approval: {said}"
            said.append(line)
            waiting = re.search(rf"waiting for approval ({UUID_PATTERN})", line)
            approval_id = waiting.group(1) if waiting else None

        # THEN it names the approval, which the inbox lists; the requester may not approve their own goal
        assert "the goal asks for a human's approval" in said[-1], said
        inbox = await strata(platform, approver, "approvals")
        assert inbox.exit_code == 0, inbox.output
        assert approval_id in inbox.output
        assert "pending" in inbox.output
        own = await strata(platform, key, "approve", approval_id)
        assert own.exit_code == 2, own.output
        assert "403" in own.output
        assert "yours" in own.output
        approved = await strata(platform, approver, "approve", approval_id, "--comment", "fine")
        assert approved.exit_code == 0, approved.output
        assert f"approval {approval_id}: your approve is recorded; it is approved" in approved.output

        # and the goal runs to completion: the follower exits 0 with the summary
        rest, _ = await asyncio.wait_for(follower.communicate(), 90)
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()
    output = "".join(said) + rest.decode()
    assert follower.returncode == 0, output
    assert re.search(rf"goal {UUID_PATTERN}: completed", output), output
    assert 'words: {"result":3}' in output
    decided = await strata(platform, approver, "approvals", "--status", "approved")
    assert approval_id in decided.output
    assert approval_id not in (await strata(platform, approver, "approvals")).output  # no longer pending


async def test_a_run_is_paused_resumed_and_cancelled_but_not_retried_while_running(platform: Platform) -> None:
    key = await new_key(platform)
    slow = {"code": "import time\ntime.sleep(4.0)\nresult = 1"}  # long enough to outlast the commands under load
    goal_id = await run_template(
        platform,
        platform.auth(key),
        [
            {"task_id": "a", "title": "A", "kind": "tool", "tool": "python", "input": slow},
            {"task_id": "b", "title": "B", "kind": "tool", "tool": "python", "input": slow, "depends_on": ["a"]},
        ],
    )
    run_id = (await run_of(platform, platform.auth(key), goal_id))["run_id"]

    not_failed = await strata(platform, key, "run", "retry", run_id, "a")
    assert not_failed.exit_code == 2, not_failed.output
    assert "answered 409 Conflict: the run is running; only a failed run's failed task can be retried" in (
        not_failed.output
    )
    paused = await strata(platform, key, "run", "pause", run_id, "--reason", "look")
    assert paused.exit_code == 0, paused.output
    assert f"run {run_id}: paused" in paused.output
    resumed = await strata(platform, key, "run", "resume", run_id)
    assert f"run {run_id}: running" in resumed.output, resumed.output
    cancelled = await strata(platform, key, "run", "cancel", run_id, "--reason", "enough")
    assert f"run {run_id}: cancelled" in cancelled.output, cancelled.output
    again = await strata(platform, key, "run", "resume", run_id)
    assert again.exit_code == 2, again.output
    assert f"POST /v1/runs/{run_id}/resume answered 409" in again.output


async def test_keys_are_created_listed_rotated_and_revoked(platform: Platform) -> None:
    key = await new_key(platform)
    name = f"ci-{uuid.uuid4().hex[:6]}"

    made = await strata(platform, key, "keys", "create", name, "--scope", "runs:read")
    assert made.exit_code == 0, made.output
    key_id = re.search(rf"key ({UUID_PATTERN}) \({name}\)", made.output)
    secret = re.search(r"^(sk_\S+)$", made.output, re.MULTILINE)
    assert key_id, made.output
    assert secret, made.output
    assert "shown this once" in made.output

    listed = await strata(platform, key, "keys", "list")
    assert listed.exit_code == 0, listed.output
    row = next((line for line in listed.output.splitlines() if key_id.group(1) in line), "")
    assert name in row, listed.output
    assert "runs:read" in row, listed.output
    assert "active" in row, listed.output
    assert secret.group(1) not in listed.output  # never shown again

    revoked = await strata(platform, key, "keys", "revoke", key_id.group(1))
    assert revoked.exit_code == 0, revoked.output
    assert "revoked at" in revoked.output
    assert key_id.group(1) not in (await strata(platform, key, "keys", "list")).output
    assert key_id.group(1) in (await strata(platform, key, "keys", "list", "--all")).output
    refused = await strata(platform, secret.group(1), "runs")  # a revoked key is refused: exit 2
    assert refused.exit_code == 2, refused.output
    assert "GET /v1/runs answered 403" in refused.output

    other = json.loads((await strata(platform, key, "keys", "create", "old", "--scope", "runs:read", "--json")).output)
    rotated = await strata(platform, key, "keys", "rotate", other["key_id"], "--grace-seconds", "0", "--json")
    assert rotated.exit_code == 0, rotated.output
    renewed = json.loads(rotated.output)
    assert renewed["key_id"] != other["key_id"]
    assert (await strata(platform, renewed["api_key"], "runs")).exit_code == 0


async def test_refused_requests_show_the_status_and_detail_and_exit_2(platform: Platform) -> None:
    key = await new_key(platform)
    missing = str(uuid.uuid4())

    unknown_run = await strata(platform, key, "run", "show", missing)
    assert unknown_run.exit_code == 2, unknown_run.output
    assert f"GET /v1/runs/{missing} answered 404 Not found: no run {missing}" in unknown_run.output

    bad_key = await strata(platform, "sk_00000000_not-a-key", "runs")
    assert bad_key.exit_code == 2, bad_key.output
    assert "answered 403" in bad_key.output
    assert "the credential was not accepted" in bad_key.output

    invalid = await strata(platform, key, "goal", "anything", "--constraint", "max_parallelism=0")
    assert invalid.exit_code == 2, invalid.output
    assert "answered 422" in invalid.output
    assert "body.constraints.max_parallelism" in invalid.output

    unknown_type = await strata(platform, key, "events", "tail", "--no-follow", "--type", "NoSuchEvent")
    assert unknown_type.exit_code == 2, unknown_type.output
    assert "NoSuchEvent" in unknown_type.output
