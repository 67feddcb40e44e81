"""Scheduled goals through the local cloud: each schedule is an EventBridge Scheduler schedule in the emulator, which
the local cloud fires on time into L11, which submits the goal to L05 once per scheduled time; pause and resume
change the Scheduler schedule's state, deletion removes it; bad definitions are 422s with reasons; another tenant's
schedule is 404."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem

pytestmark = pytest.mark.e2e

ON_TIME = timedelta(seconds=2)  # a firing's arrival after its scheduled time, at most
PLAN = {
    "tasks": [
        {
            "task_id": "numbers",
            "title": "Read the numbers",
            "kind": "tool",
            "tool": "json_query",
            "input": {"data": {"n": [3, 4]}, "query": "n"},
        }
    ]
}


def goal(text: str) -> dict[str, Any]:
    """A goal with its own plan: planned and run without a model."""
    return {"text": text, "plan": PLAN}


def at_in(seconds: float, timezone: str = "UTC") -> tuple[str, datetime]:
    """An at() expression `seconds` from now (whole seconds, in `timezone`) and the instant it names."""
    instant = (datetime.now(UTC) + timedelta(seconds=seconds + 1)).replace(microsecond=0)
    wall = instant.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"at({wall})", instant


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _tenant(platform: Platform) -> dict[str, str]:
    return platform.auth((await platform.new_tenant(f"schedules-{uuid.uuid4().hex[:8]}"))["api_key"])


async def _create(platform: Platform, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"s-{uuid.uuid4().hex[:8]}")
    created = await platform.api.post("/v1/schedules", json=body, headers=headers)
    assert created.status_code == 201, created.text
    schedule: dict[str, Any] = created.json()
    assert created.headers["location"] == f"/v1/schedules/{schedule['schedule_id']}"
    assert created.headers["etag"] == f'"v{schedule["version"]}"'
    assert schedule["sync_status"] == "synced"
    return schedule


async def _runs(platform: Platform, headers: dict[str, str], schedule_id: str) -> list[dict[str, Any]]:
    answer = await platform.api.get(f"/v1/schedules/{schedule_id}/runs", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def _wait_runs(
    platform: Platform, headers: dict[str, str], schedule_id: str, count: int, timeout_s: float
) -> list[dict[str, Any]]:
    """The schedule's firings once `count` of them have submitted their goal (latest first)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        runs = await _runs(platform, headers, schedule_id)
        if sum(run["outcome"] == "submitted" for run in runs) >= count:
            return runs
        assert asyncio.get_running_loop().time() < deadline, f"{count} firings expected, got {runs}"
        await asyncio.sleep(0.2)


async def _finished_goal(platform: Platform, headers: dict[str, str], goal_id: str) -> dict[str, Any]:
    for _ in range(600):
        found: dict[str, Any] = (await platform.api.get(f"/v1/goals/{goal_id}", headers=headers)).json()
        if found["status"] in ("completed", "failed", "cancelled", "rejected"):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"goal {goal_id} did not finish: {found}")


def _in_scheduler(platform: Platform, schedule_id: str) -> dict[str, Any] | None:
    """The schedule as the emulator's EventBridge Scheduler holds it (None: it holds none)."""
    client = platform.aws("scheduler")
    try:
        found: dict[str, Any] = client.get_schedule(
            Name=schedule_id, GroupName=platform.cloud.resource("IntegrationScheduleGroup")
        )
    except client.exceptions.ResourceNotFoundException:
        return None
    return found


async def _until_gone_from_scheduler(platform: Platform, schedule_id: str) -> None:
    for _ in range(50):
        if await asyncio.to_thread(_in_scheduler, platform, schedule_id) is None:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"schedule {schedule_id} is still in EventBridge Scheduler")


async def test_a_one_time_schedule_submits_its_goal_on_time(platform: Platform) -> None:
    # GIVEN a schedule a few seconds ahead, in a zone that is not UTC
    headers = await _tenant(platform)
    expression, instant = at_in(4, "Asia/Kolkata")
    text = f"Scheduled {uuid.uuid4().hex[:8]}"
    schedule = await _create(platform, headers, expression=expression, timezone="Asia/Kolkata", goal=goal(text))
    schedule_id = schedule["schedule_id"]
    assert [when(t) for t in schedule["next_fire_times"]] == [instant]
    assert (schedule["state"], schedule["goal"]["strategy"]) == ("enabled", "given")
    held = _in_scheduler(platform, schedule_id)
    assert held is not None
    assert (held["ScheduleExpression"], held["ScheduleExpressionTimezone"], held["State"]) == (
        expression,
        "Asia/Kolkata",
        "ENABLED",
    )
    assert held["Target"]["Input"].count("<aws.scheduler.scheduled-time>") == 1
    assert held["ActionAfterCompletion"] == "DELETE"

    # WHEN its time comes, THEN it fires once, on time, and its goal is submitted, planned and run
    [run] = await _wait_runs(platform, headers, schedule_id, 1, timeout_s=30)
    assert when(run["scheduled_time"]) == instant
    assert timedelta(0) <= when(run["fired_at"]) - instant <= ON_TIME, run
    assert (run["outcome"], run["attempts"], run["reason"]) == ("submitted", 1, None)
    assert run["execution_id"]
    submitted = await _finished_goal(platform, headers, run["goal_id"])
    assert (submitted["text"], submitted["status"], submitted["strategy"]) == (text, "completed", "given")
    assert submitted["submitted_by"] == schedule["submits_as"]
    # a one-time schedule leaves nothing behind in Scheduler, and has no time left
    await _until_gone_from_scheduler(platform, schedule_id)
    after = (await platform.api.get(f"/v1/schedules/{schedule_id}", headers=headers)).json()
    assert (after["next_fire_times"], after["state"]) == ([], "enabled")
    assert len(await _runs(platform, headers, schedule_id)) == 1


async def test_a_paused_schedule_does_not_fire_and_a_resumed_one_does(platform: Platform) -> None:
    # GIVEN one schedule paused after its creation, and one created paused, both due in a few seconds
    headers = await _tenant(platform)
    first, first_at = at_in(4)
    second, second_at = at_in(5)
    paused = await _create(platform, headers, expression=first, goal=goal("never"))
    later = await _create(platform, headers, expression=second, goal=goal("after resume"), state="paused")
    assert later["next_fire_times"] == []
    pause = await platform.api.post(
        f"/v1/schedules/{paused['schedule_id']}/pause", headers={**headers, "if-match": f'"v{paused["version"]}"'}
    )
    assert pause.status_code == 200, pause.text
    assert (pause.json()["state"], pause.json()["next_fire_times"], pause.json()["version"]) == ("paused", [], 2)
    again = await platform.api.post(f"/v1/schedules/{paused['schedule_id']}/pause", headers=headers)
    assert (again.status_code, again.json()["version"]) == (200, 2)  # pausing a paused schedule changes nothing
    assert _in_scheduler(platform, paused["schedule_id"])["State"] == "DISABLED"  # type: ignore[index]
    assert _in_scheduler(platform, later["schedule_id"])["State"] == "DISABLED"  # type: ignore[index]

    # WHEN the second is resumed before its time
    resumed = await platform.api.post(f"/v1/schedules/{later['schedule_id']}/resume", headers=headers)
    assert resumed.status_code == 200, resumed.text
    assert [when(t) for t in resumed.json()["next_fire_times"]] == [second_at]
    assert _in_scheduler(platform, later["schedule_id"])["State"] == "ENABLED"  # type: ignore[index]

    # THEN it fires on time, and the paused one does not fire at its time
    [run] = await _wait_runs(platform, headers, later["schedule_id"], 1, timeout_s=30)
    assert when(run["scheduled_time"]) == second_at
    assert when(run["fired_at"]) - second_at <= ON_TIME
    while datetime.now(UTC) < first_at + ON_TIME:
        await asyncio.sleep(0.2)
    assert await _runs(platform, headers, paused["schedule_id"]) == []
    # its time has passed: there is nothing left to resume
    assert (
        "fired its last time"
        in assert_problem(
            await platform.api.post(f"/v1/schedules/{paused['schedule_id']}/resume", headers=headers), 409
        )["detail"]
    )


async def test_a_firing_that_cannot_submit_its_goal_is_recorded_and_retried(platform: Platform) -> None:
    # GIVEN a schedule due in a few seconds, and L05 out of service when it fires
    headers = await _tenant(platform)
    expression, instant = at_in(3)
    schedule = await _create(platform, headers, expression=expression, goal=goal("despite an outage"))
    planning = platform.cloud.pools["PlanningFunction"]
    planning.throttled = True
    try:
        # WHEN it fires, THEN the failure is in its history, with the reason
        for _ in range(150):
            runs = await _runs(platform, headers, schedule["schedule_id"])
            if runs and runs[0]["outcome"] == "failed":
                break
            await asyncio.sleep(0.1)
        [failed] = runs
        assert failed["outcome"] == "failed", failed
        assert "POST /v1/goals answered 503" in failed["reason"]
        assert when(failed["fired_at"]) - instant <= ON_TIME
    finally:
        planning.throttled = False
    # AND the invocation is retried as Lambda retries an asynchronous one, which submits the goal
    [run] = await _wait_runs(platform, headers, schedule["schedule_id"], 1, timeout_s=30)
    assert (run["outcome"], run["reason"], when(run["scheduled_time"])) == ("submitted", None, instant)
    assert run["attempts"] >= 2
    assert run["fired_at"] == failed["fired_at"]  # the firing's arrival, not its retry's
    submitted = await _finished_goal(platform, headers, run["goal_id"])
    assert submitted["text"] == "despite an outage"


async def test_cron_and_rate_schedules_fire_at_their_times(platform: Platform) -> None:
    # GIVEN a schedule every minute (at each minute's start) and one every minute from its creation, made away
    # from a minute's start so that the wait is for the next one
    headers = await _tenant(platform)
    while datetime.now(UTC).second < 2 or datetime.now(UTC).second > 55:
        await asyncio.sleep(0.5)
    cron = await _create(platform, headers, expression="cron(* * * * ? *)", goal=goal("each minute"))
    rate = await _create(platform, headers, expression="rate(1 minute)", goal=goal("every minute from now"))
    cron_next = [when(t) for t in cron["next_fire_times"]]
    rate_next = [when(t) for t in rate["next_fire_times"]]
    assert cron_next[0].second == 0
    assert cron_next[1] - cron_next[0] == timedelta(minutes=1)
    assert when(rate["created_at"]) <= rate_next[0] <= when(rate["created_at"]) + timedelta(seconds=1)
    assert rate_next[1] - rate_next[0] == timedelta(minutes=1)

    # WHEN a minute passes, THEN each fired at the times it showed, on time
    rate_runs = await _wait_runs(platform, headers, rate["schedule_id"], 2, timeout_s=90)
    cron_runs = await _wait_runs(platform, headers, cron["schedule_id"], 1, timeout_s=30)
    assert [when(r["scheduled_time"]) for r in reversed(rate_runs)][:2] == rate_next[:2]
    assert when(cron_runs[-1]["scheduled_time"]) == cron_next[0]
    for run in [*rate_runs, *cron_runs]:
        assert timedelta(0) <= when(run["fired_at"]) - when(run["scheduled_time"]) <= ON_TIME, run
        assert run["outcome"] == "submitted"
    assert len({run["goal_id"] for run in rate_runs}) == len(rate_runs)  # one goal per firing


async def test_a_firing_delivered_twice_submits_one_goal(platform: Platform) -> None:
    # GIVEN a schedule (its own times far away) and its firing for a given time, invoked as Scheduler would
    headers = await _tenant(platform)
    text = f"Once {uuid.uuid4().hex[:8]}"
    schedule = await _create(platform, headers, expression="cron(0 0 1 1 ? 2090)", goal=goal(text))
    tenant_id = (await platform.api.get("/v1/tenant", headers=headers)).json()["tenant_id"]

    def firing(scheduled_time: str) -> dict[str, Any]:
        args = {"tenant_id": tenant_id, "schedule_id": schedule["schedule_id"], "scheduled_time": scheduled_time}
        return {"command": "fire_schedule", "args": {**args, "execution_id": str(uuid.uuid4()), "attempt": "1"}}

    # WHEN the same firing arrives twice, one after the other, and another one twice at once
    first = await platform.invoke("IntegrationFunction", firing("2030-01-01T00:00:00Z"))
    second = await platform.invoke("IntegrationFunction", firing("2030-01-01T00:00:00Z"))
    both = await asyncio.gather(
        *(platform.invoke("IntegrationFunction", firing("2030-01-01T00:01:00Z")) for _ in range(2))
    )

    # THEN each scheduled time has one goal, which every copy of its firing names
    for answer in (first, second, *both):
        assert "FunctionError" not in answer, answer
    assert first["Payload"]["outcome"] == second["Payload"]["outcome"] == "submitted"
    assert second["Payload"]["goal_id"] == first["Payload"]["goal_id"]
    assert second["Payload"]["duplicate"] is True
    assert both[0]["Payload"]["goal_id"] == both[1]["Payload"]["goal_id"] != first["Payload"]["goal_id"]
    runs = await _runs(platform, headers, schedule["schedule_id"])
    assert [(r["scheduled_time"], r["outcome"]) for r in runs] == [
        ("2030-01-01T00:01:00Z", "submitted"),
        ("2030-01-01T00:00:00Z", "submitted"),
    ]
    goals = (await platform.api.get("/v1/goals", params={"limit": 50}, headers=headers)).json()["items"]
    assert sorted(g["goal_id"] for g in goals if g["text"] == text) == sorted(
        {first["Payload"]["goal_id"], both[0]["Payload"]["goal_id"]}
    )

    # AND a firing that crosses the schedule's pause or deletion submits nothing
    await platform.api.post(f"/v1/schedules/{schedule['schedule_id']}/pause", headers=headers)
    skipped = await platform.invoke("IntegrationFunction", firing("2030-01-01T00:02:00Z"))
    assert (skipped["Payload"]["outcome"], skipped["Payload"]["reason"]) == ("skipped", "the schedule is paused")
    assert (await platform.api.delete(f"/v1/schedules/{schedule['schedule_id']}", headers=headers)).status_code == 204
    gone = await platform.invoke("IntegrationFunction", firing("2030-01-01T00:03:00Z"))
    assert (gone["Payload"]["outcome"], gone["Payload"]["reason"]) == ("skipped", "the schedule was deleted")


async def test_the_scheduler_schedule_follows_changes_pause_resume_and_deletion(platform: Platform) -> None:
    # GIVEN a weekday schedule in Paris
    headers = await _tenant(platform)
    schedule = await _create(
        platform, headers, expression="cron(0 8 ? * mon-fri *)", timezone="Europe/Paris", goal=goal("standup")
    )
    schedule_id = schedule["schedule_id"]
    assert schedule["expression"] == "cron(0 8 ? * MON-FRI *)"  # as Scheduler writes it
    assert all(when(t).astimezone(ZoneInfo("Europe/Paris")).hour == 8 for t in schedule["next_fire_times"])
    assert len(schedule["next_fire_times"]) == 5
    listed = (await platform.api.get("/v1/schedules", headers=headers)).json()["items"]
    assert [s["schedule_id"] for s in listed] == [schedule_id]

    # WHEN it is changed (with the version it has), THEN Scheduler holds the change; a stale version is refused
    changed = await platform.api.patch(
        f"/v1/schedules/{schedule_id}",
        json={"expression": "rate(2 hours)", "end_at": "2099-01-01T00:00:00Z", "name": "every two hours"},
        headers={**headers, "if-match": '"v1"'},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["version"], changed.headers["etag"]) == (2, '"v2"')
    held = _in_scheduler(platform, schedule_id)
    assert held is not None
    assert (held["ScheduleExpression"], held["EndDate"].year) == ("rate(2 hours)", 2099)
    assert when(changed.json()["next_fire_times"][0]) == held["StartDate"]
    assert_problem(
        await platform.api.patch(
            f"/v1/schedules/{schedule_id}", json={"description": "x"}, headers={**headers, "if-match": '"v1"'}
        ),
        412,
    )

    # WHEN it is paused and resumed, THEN Scheduler holds it DISABLED, then ENABLED
    await platform.api.post(f"/v1/schedules/{schedule_id}/pause", headers=headers)
    assert _in_scheduler(platform, schedule_id)["State"] == "DISABLED"  # type: ignore[index]
    paused = (await platform.api.get("/v1/schedules", params={"state": "paused"}, headers=headers)).json()
    assert [s["schedule_id"] for s in paused["items"]] == [schedule_id]
    await platform.api.post(f"/v1/schedules/{schedule_id}/resume", headers=headers)
    assert _in_scheduler(platform, schedule_id)["State"] == "ENABLED"  # type: ignore[index]

    # WHEN it is deleted, THEN it is gone from Scheduler and from the API, history included
    deleted = await platform.api.delete(f"/v1/schedules/{schedule_id}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert _in_scheduler(platform, schedule_id) is None
    assert_problem(await platform.api.get(f"/v1/schedules/{schedule_id}", headers=headers), 404)
    assert_problem(await platform.api.get(f"/v1/schedules/{schedule_id}/runs", headers=headers), 404)


async def test_a_write_scheduler_does_not_take_is_undone_and_what_a_crash_leaves_is_synced(
    platform: Platform,
) -> None:
    # GIVEN a schedule, and then EventBridge Scheduler failing every write (its group gone)
    headers = await _tenant(platform)
    schedule = await _create(platform, headers, name="kept", expression="cron(0 9 * * ? *)", goal=goal("kept"))
    schedule_id, path = schedule["schedule_id"], f"/v1/schedules/{schedule['schedule_id']}"
    client, group = platform.aws("scheduler"), platform.cloud.resource("IntegrationScheduleGroup")
    await asyncio.to_thread(client.delete_schedule_group, Name=group)
    try:
        # WHEN a schedule is created, THEN it is not: 503, and no trace of it
        body = {"name": "lost", "expression": "rate(1 hour)", "goal": goal("lost")}
        assert_problem(await platform.api.post("/v1/schedules", json=body, headers=headers), 503)
        listed = (await platform.api.get("/v1/schedules", headers=headers)).json()["items"]
        assert [s["name"] for s in listed] == ["kept"]
        # WHEN a schedule is changed, THEN the change is undone, as a new version the answer names
        changed = await platform.api.patch(
            path, json={"expression": "rate(2 hours)"}, headers={**headers, "if-match": '"v1"'}
        )
        problem = assert_problem(changed, 503)
        assert (problem["current_etag"], "unchanged" in problem["detail"]) == ('"v3"', True)
        now = (await platform.api.get(path, headers=headers)).json()
        assert (now["expression"], now["version"], now["sync_status"]) == ("cron(0 9 * * ? *)", 3, "pending")
    finally:
        await asyncio.to_thread(client.create_schedule_group, Name=group)

    # WHEN the sync job finds it unsynced for long enough (a minute; made so here)
    conn = await asyncpg.connect(platform.cloud.services.database_url)
    try:
        stale = "UPDATE schedules SET sync_changed_at = now() - interval '1 hour' WHERE schedule_id = $1"
        await conn.execute(stale, uuid.UUID(schedule_id))
        # THEN Scheduler holds the row's definition again
        for _ in range(100):
            if (await platform.api.get(path, headers=headers)).json()["sync_status"] == "synced":
                break
            await asyncio.sleep(0.2)
        held = _in_scheduler(platform, schedule_id)
        assert held is not None
        assert (held["ScheduleExpression"], held["State"]) == ("cron(0 9 * * ? *)", "ENABLED")

        # AND a deletion that crashed after marking the row finishes: out of Scheduler, then the row
        await conn.execute(
            "UPDATE schedules SET sync_status = 'deleting', sync_changed_at = now() - interval '1 hour' "
            "WHERE schedule_id = $1",
            uuid.UUID(schedule_id),
        )
        assert_problem(await platform.api.get(path, headers=headers), 404)
        await _until_gone_from_scheduler(platform, schedule_id)
        for _ in range(50):
            left = await conn.fetchval("SELECT count(*) FROM schedules WHERE schedule_id = $1", uuid.UUID(schedule_id))
            if left == 0:
                break
            await asyncio.sleep(0.2)
        assert left == 0
    finally:
        await conn.close()


async def test_bad_schedules_are_refused_with_reasons(platform: Platform) -> None:
    headers = await _tenant(platform)
    past, _ = at_in(-120)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"expression": "cron(0 8 * * * *)"}, "exactly one of day-of-month and day-of-week is ?"),
        ({"expression": "cron(61 8 * * ? *)"}, "minutes: 61 is outside 0-59"),
        ({"expression": "cron(0 8 * *)"}, "six fields"),
        ({"expression": "rate(30 seconds)"}, "the shortest rate is 1 minute"),
        ({"expression": "rate(0 minutes)"}, "the shortest rate is 1 minute"),
        ({"expression": past}, "is in the past"),
        ({"expression": "cron(0 0 1 1 ? 2020)"}, "would never fire"),
        ({"expression": "every day"}, "a schedule expression is cron("),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"start_at": "2031-01-01T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}, "end_at is after start_at"),
        ({"expression": "at(2031-01-01T00:00:00)", "end_at": "2032-01-01T00:00:00Z"}, "does not apply to at()"),
        ({"start_at": "2031-01-01T00:00:00"}, "timezone"),
        ({"goal": {"text": "x", "constraints": {"deadline": "2031-01-01T00:00:00Z"}}}, "one fixed deadline"),
        ({"goal": {"text": "x", "strategy": "given"}}, "strategy given needs the plan"),
        ({"goal": {"text": ""}}, "at least 1 character"),
        ({"colour": "blue"}, "Extra inputs are not permitted"),
    ]
    for change, reason in cases:
        body = {"name": "bad", "expression": "rate(1 hour)", "goal": goal("x"), **change}
        problem = assert_problem(await platform.api.post("/v1/schedules", json=body, headers=headers), 422)
        assert reason in str(problem), (change, problem)
    assert (await platform.api.get("/v1/schedules", headers=headers)).json()["items"] == []

    # a name is the tenant's once; a change is checked like a creation
    made = await _create(platform, headers, name="nightly", expression="cron(0 2 * * ? *)", goal=goal("x"))
    assert_problem(
        await platform.api.post(
            "/v1/schedules", json={"name": "nightly", "expression": "rate(1 hour)", "goal": goal("y")}, headers=headers
        ),
        409,
    )
    refused = await platform.api.patch(
        f"/v1/schedules/{made['schedule_id']}", json={"expression": "rate(1 minutes)"}, headers=headers
    )
    assert "write rate(1 minute)" in str(assert_problem(refused, 422))
    # submitting goals takes goals:write too: a schedule submits them for its author
    tenant = (await platform.api.get("/v1/tenant", headers=headers)).json()["name"]
    narrow = platform.auth((await platform.new_tenant(tenant, scopes=["schedules:read", "schedules:write"]))["api_key"])
    body = {"name": "narrow", "expression": "rate(1 hour)", "goal": goal("x")}
    assert (
        "goals:write"
        in assert_problem(await platform.api.post("/v1/schedules", json=body, headers=narrow), 403)["detail"]
    )
    paused = await platform.api.post(f"/v1/schedules/{made['schedule_id']}/pause", headers=narrow)
    assert paused.status_code == 200, paused.text  # pausing is the schedule's own business


async def test_another_tenants_schedule_is_not_found(platform: Platform) -> None:
    owner, other = await _tenant(platform), await _tenant(platform)
    schedule = await _create(platform, owner, expression="cron(0 9 * * ? *)", goal=goal("mine"))
    path = f"/v1/schedules/{schedule['schedule_id']}"
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"description": "theirs"}),
        ("DELETE", "", None),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
        ("GET", "/runs", None),
    ]:
        answer = await platform.api.request(method, path + suffix, json=body, headers=other)
        assert_problem(answer, 404)
    assert (await platform.api.get("/v1/schedules", headers=other)).json()["items"] == []
    mine = await platform.api.get(path, headers=owner)
    assert (mine.json()["version"], mine.json()["description"], mine.json()["state"]) == (1, "", "enabled")
    assert _in_scheduler(platform, schedule["schedule_id"])["State"] == "ENABLED"  # type: ignore[index]
