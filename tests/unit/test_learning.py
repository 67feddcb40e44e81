"""Learning's pure parts: generalising a goal and its plan into a template, reproducible stratified splits, and the
fine-tuning formats."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from strata_learning.datasets import Splits, assign
from strata_learning.exports import bedrock_record, openai_record
from strata_learning.learned import generalise

PLAN = {
    "tasks": [
        {"task_id": "fetch", "title": "Fetch https://example.com/a.json", "kind": "tool", "tool": "http_request",
         "input": {"url": "https://example.com/a.json"}},
        {"task_id": "top", "title": "Top 3", "kind": "tool", "tool": "python", "depends_on": ["fetch"],
         "input": {"code": "result = sorted(inputs['x'])[:n]", "inputs": {"x": {"$from": "fetch", "path": "json"}},
                   "n": 3}},
    ]
}  # fmt: skip


def test_a_goal_and_its_plan_generalise_into_a_template() -> None:
    learned = generalise("Fetch https://example.com/a.json and keep the top 3 items.", PLAN)
    assert learned is not None
    assert learned.pattern == "Fetch {p1} and keep the top {p2} items."
    assert learned.parameters["properties"] == {"p1": {"type": "string"}, "p2": {"type": "integer"}}
    fetch, top = learned.body["tasks"]
    assert fetch["input"]["url"] == "{{p1}}"
    assert fetch["title"] == "Fetch {{p1}}"
    assert top["input"]["n"] == "{{p2}}"
    assert top["input"]["inputs"]["x"] == {"$from": "fetch", "path": "json"}  # references stay as they are
    assert top["task_id"] == "top"  # ids and dependencies are not values


def test_nothing_is_learned_from_a_goal_without_values_or_with_too_little_text() -> None:
    assert generalise("Tidy up the backlog please", PLAN) is None  # no value of the goal is in the plan
    assert generalise("https://example.com/a.json", PLAN) is None  # no literal words to match by
    assert generalise("Fetch {this} https://example.com/a.json now", PLAN) is None  # braces would break the phrase


def test_quoted_values_keep_their_quotes_in_the_phrase() -> None:
    plan = {"tasks": [{"task_id": "up", "title": "Up", "kind": "tool", "tool": "text",
                       "input": {"operation": "upper", "text": "alpha"}}]}  # fmt: skip
    learned = generalise('Uppercase the word "alpha" and report it', plan)
    assert learned is not None
    assert learned.pattern == 'Uppercase the word "{p1}" and report it'
    assert learned.body["tasks"][0]["input"]["text"] == "{{p1}}"


def test_splits_are_stratified_and_reproducible_by_seed() -> None:
    examples = [(f"e{n}", "a" if n < 20 else "b") for n in range(30)]
    splits = Splits(train=0.8, validation=0.1, test=0.1)
    first = assign(examples, splits, seed=3)
    assert first == assign(list(reversed(examples)), splits, seed=3)  # order does not matter, the seed does
    assert first != assign(examples, splits, seed=4)
    a = Counter(first[e] for e, s in examples if s == "a")
    b = Counter(first[e] for e, s in examples if s == "b")
    assert a == {"train": 16, "validation": 2, "test": 2}
    assert b == {"train": 8, "validation": 1, "test": 1}
    assert assign([("only", "")], splits, seed=0) == {"only": "train"}
    with pytest.raises(ValidationError, match="sum to"):
        Splits(train=0.5, validation=0.1, test=0.1)


MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You count."},
    {"role": "user", "content": "Task: count"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "python", "arguments": {"code": "1"}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "python", "content": '{"result": 1}'},
    {"role": "assistant", "content": '{"n": 1}', "tool_calls": []},
]


def test_the_fine_tuning_formats() -> None:
    openai = openai_record(MESSAGES)["messages"]
    assert [m["role"] for m in openai] == ["system", "user", "assistant", "tool", "assistant"]
    call = openai[2]["tool_calls"][0]
    assert (call["type"], call["function"]["name"], json.loads(call["function"]["arguments"])) == (
        "function", "python", {"code": "1"}
    )  # fmt: skip
    assert openai[3] == {"role": "tool", "tool_call_id": "c1", "content": '{"result": 1}'}
    bedrock = bedrock_record(MESSAGES)
    assert bedrock["schemaVersion"] == "bedrock-conversation-2024"
    assert bedrock["system"] == [{"text": "You count."}]
    assert bedrock["messages"] == [
        {"role": "user", "content": [{"text": "Task: count"}]},
        {"role": "assistant", "content": [{"text": '{"n": 1}'}]},
    ]
