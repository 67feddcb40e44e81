"""Plan templates through the local cloud: created (refused with reasons when their plan could never run),
versioned with If-Match, matched to a goal's text with typed parameters (active ones only: a proposed template
waits for a person), listed by status and origin, deleted, and private to their tenant."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_platform import assert_problem

pytestmark = pytest.mark.e2e


def template(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "patterns": ["count the words of {text}"],
        "parameters": {"type": "object", "properties": {"text": {"type": "string", "maxLength": 1000}}},
        "body": {
            "tasks": [
                {
                    "task_id": "count",
                    "title": "Count",
                    "kind": "tool",
                    "tool": "text",
                    "input": {"operation": "count", "text": "{{text}}"},
                },
                {
                    "task_id": "pick",
                    "title": "Words only",
                    "kind": "tool",
                    "tool": "json_query",
                    "depends_on": ["count"],
                    "input": {"data": {"$from": "count", "path": "result"}, "query": "words"},
                },
            ]
        },
    }


async def test_a_template_is_created_matched_changed_and_deleted(platform: Platform) -> None:
    headers = platform.auth((await platform.new_tenant(f"tpl-{uuid.uuid4().hex[:8]}"))["api_key"])
    made = await platform.api.post("/v1/plan-templates", json=template("words"), headers=headers)
    assert made.status_code == 201, made.text
    template_id = made.json()["template_id"]
    assert made.headers["location"] == f"/v1/plan-templates/{template_id}"
    assert_problem(await platform.api.post("/v1/plan-templates", json=template("words"), headers=headers), 409)

    matched = await platform.api.post(
        "/v1/plan-templates/match", json={"text": "Count the words of 'to be or not to be'."}, headers=headers
    )
    assert matched.status_code == 200, matched.text
    answer = matched.json()
    assert (answer["matched"], answer["template_name"]) == (True, "words")
    assert answer["parameters"] == {"text": "to be or not to be"}
    assert answer["plan"]["tasks"][0]["input"] == {"operation": "count", "text": "to be or not to be"}
    missed = await platform.api.post("/v1/plan-templates/match", json={"text": "write a poem"}, headers=headers)
    assert missed.json() == {
        "matched": False,
        "template_id": None,
        "template_name": None,
        "parameters": {},
        "plan": None,
    }

    changed = await platform.api.patch(
        f"/v1/plan-templates/{template_id}",
        json={"patterns": ["how many words are in {text}"]},
        headers={**headers, "If-Match": '"v1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"v2"'
    stale = await platform.api.patch(
        f"/v1/plan-templates/{template_id}", json={"description": "x"}, headers={**headers, "If-Match": '"v1"'}
    )
    assert_problem(stale, 412)
    listed = await platform.api.get("/v1/plan-templates", headers=headers)
    assert [t["name"] for t in listed.json()["items"]] == ["words"]
    [shown] = listed.json()["items"]
    assert {k: shown[k] for k in ("origin", "lineage", "status", "used_count", "last_used_at")} == {
        "origin": "authored",
        "lineage": {"run_id": None, "goal_id": None, "plan_id": None, "score": None},
        "status": "active",
        "used_count": 0,
        "last_used_at": None,
    }
    deleted = await platform.api.delete(f"/v1/plan-templates/{template_id}", headers={**headers, "If-Match": '"v2"'})
    assert deleted.status_code == 204
    assert_problem(await platform.api.get(f"/v1/plan-templates/{template_id}", headers=headers), 404)


async def test_templates_that_could_never_run_are_refused_with_reasons(platform: Platform) -> None:
    headers = platform.auth((await platform.new_tenant(f"tpl-{uuid.uuid4().hex[:8]}"))["api_key"])
    cyclic = template("cyclic")
    cyclic["body"]["tasks"][0]["depends_on"] = ["pick"]
    refused = await platform.api.post("/v1/plan-templates", json=cyclic, headers=headers)
    problem = assert_problem(refused, 422)
    assert any("cycle" in p for p in problem["problems"])
    undeclared = {**template("undeclared"), "patterns": ["count {words}"]}
    assert (
        "words"
        in assert_problem(await platform.api.post("/v1/plan-templates", json=undeclared, headers=headers), 422)[
            "detail"
        ]
    )


async def test_a_proposed_template_is_matched_only_once_a_person_makes_it_active(platform: Platform) -> None:
    # GIVEN a proposed template and an active one the goal's text does not match
    headers = platform.auth((await platform.new_tenant(f"tpl-{uuid.uuid4().hex[:8]}"))["api_key"])
    proposed = await platform.api.post(
        "/v1/plan-templates", json={**template("proposed"), "status": "proposed"}, headers=headers
    )
    assert proposed.status_code == 201, proposed.text
    assert (proposed.json()["status"], proposed.json()["origin"]) == ("proposed", "authored")
    other = {**template("other"), "patterns": ["tally {text}"]}
    assert (await platform.api.post("/v1/plan-templates", json=other, headers=headers)).status_code == 201
    goal = {"text": "Count the words of 'a b'"}

    # WHEN the goal's text is matched, THEN the proposed template is passed over
    assert (await platform.api.post("/v1/plan-templates/match", json=goal, headers=headers)).json()["matched"] is False
    by_status = await platform.api.get("/v1/plan-templates", params={"status": "proposed"}, headers=headers)
    assert [t["name"] for t in by_status.json()["items"]] == ["proposed"]
    active = await platform.api.get("/v1/plan-templates", params={"status": "active"}, headers=headers)
    assert [t["name"] for t in active.json()["items"]] == ["other"]
    learned = await platform.api.get("/v1/plan-templates", params={"origin": "learned"}, headers=headers)
    assert learned.json()["items"] == []
    authored = await platform.api.get("/v1/plan-templates", params={"origin": "authored"}, headers=headers)
    assert sorted(t["name"] for t in authored.json()["items"]) == ["other", "proposed"]
    assert_problem(await platform.api.get("/v1/plan-templates", params={"status": "retired"}, headers=headers), 422)

    # WHEN a person makes it active, THEN it is matched
    promoted = await platform.api.patch(
        f"/v1/plan-templates/{proposed.json()['template_id']}",
        json={"status": "active"},
        headers={**headers, "If-Match": '"v1"'},
    )
    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["status"], promoted.headers["etag"]) == ("active", '"v2"')
    matched = (await platform.api.post("/v1/plan-templates/match", json=goal, headers=headers)).json()
    assert (matched["matched"], matched["template_name"]) == (True, "proposed")


async def test_only_the_platforms_layers_say_a_template_was_learned(platform: Platform) -> None:
    headers = platform.auth((await platform.new_tenant(f"tpl-{uuid.uuid4().hex[:8]}"))["api_key"])
    lineage = {"run_id": str(uuid.uuid4()), "goal_id": str(uuid.uuid4()), "plan_id": str(uuid.uuid4()), "score": 0.9}
    for claimed in ({"origin": "learned", "lineage": lineage}, {"origin": "learned"}, {"lineage": lineage}):
        refused = await platform.api.post(
            "/v1/plan-templates", json={**template("learned"), **claimed}, headers=headers
        )
        assert_problem(refused, 403)
    assert (await platform.api.get("/v1/plan-templates", headers=headers)).json()["items"] == []
    assert_problem(
        await platform.api.post("/v1/plan-templates", json={**template("x"), "origin": "copied"}, headers=headers), 422
    )
