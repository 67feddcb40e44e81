"""Learned plan templates: the plan of a run that scored well, generalised into a plan template for planning (L05),
so a similar goal is planned from it without asking a model. The goal's distinctive values (URLs, quoted text,
file names, numbers) that the plan uses become the template's parameters: each is a placeholder in the phrase and
a slot in the plan wherever the plan used it. A template is proposed for a person to review, or active at once when
the run scored above the higher threshold; the same phrase is learned once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from strata import peers
from strata.events.evaluation import RunEvaluated
from strata.plans import REFERENCE
from strata_learning.settings import learning_settings

logger = Logger(child=True)

TOKEN = re.compile(
    r"(?P<url>https?://[^\s\"'<>]+)"
    r"|\"(?P<dq>[^\"\n{}]{1,200})\""
    r"|'(?P<sq>[^'\n{}]{1,200})'"
    r"|(?P<file>\b[\w-]+\.[A-Za-z][A-Za-z0-9]{0,4}\b)"
    r"|(?P<number>(?<![\w.])\d+(?:\.\d+)?(?![\w.]))"
)
FIELDS = ("title", "instructions", "input")  # where a task may use the goal's values
MIN_LITERAL_WORDS = 3  # a phrase with fewer literal words would match too much


@dataclass(frozen=True)
class Generalised:
    pattern: str
    parameters: dict[str, Any]
    body: dict[str, Any]


def generalise(text: str, body: dict[str, Any]) -> Generalised | None:
    """The template a goal's text and its plan make, or None when nothing general can be learned."""
    if "{" in text or "}" in text:
        return None
    tasks = [dict(t) for t in body["tasks"]]
    properties: dict[str, Any] = {}
    pattern, at = "", 0
    for found in TOKEN.finditer(text):
        kind = found.lastgroup or ""
        raw = found.group(kind)
        if kind == "url":
            raw = raw.rstrip(".,;:!?)")
        start = found.start(kind)
        end = start + len(raw)
        value: Any = raw
        if kind == "number":
            value = float(raw) if "." in raw else int(raw)
        name = f"p{len(properties) + 1}"
        replaced = [_slot(t, value, name) for t in tasks]
        if not any(changed for _, changed in replaced):
            continue
        tasks = [t for t, _ in replaced]
        properties[name] = {"type": "integer" if isinstance(value, int) else "number" if kind == "number" else "string"}
        pattern += text[at:start] + "{" + name + "}"
        at = end
    pattern += text[at:]
    literal = re.sub(r"\{p\d+\}", " ", pattern)
    if not properties or len(literal.split()) < MIN_LITERAL_WORDS:
        return None
    parameters = {"type": "object", "properties": properties, "required": sorted(properties)}
    return Generalised(" ".join(pattern.split()), parameters, {"tasks": tasks})


def _slot(task: dict[str, Any], value: Any, name: str) -> tuple[dict[str, Any], bool]:
    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, dict):
            if REFERENCE in node:
                return node
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(value, str) and isinstance(node, str) and value in node:
            changed = True
            return node.replace(value, "{{" + name + "}}")
        if (
            not isinstance(value, str)
            and not isinstance(node, bool)
            and isinstance(node, int | float)
            and node == value
        ):
            changed = True
            return "{{" + name + "}}"
        return node

    out = dict(task)
    for field in FIELDS:
        if field in out:
            out[field] = walk(out[field])
    return out, changed


async def on_run_evaluated(event: RunEvaluated) -> None:
    """Learn a template from a run that passed its gates (see consumers) and scored at least the proposing
    threshold, whose plan was made by the model (a template's or a given plan teaches nothing new)."""
    settings = learning_settings()
    if event.score < settings.learning_template_propose_score or event.goal_id is None or event.plan_id is None:
        return
    plan = await peers.get_for_event(event, f"/v1/plans/{event.plan_id}")
    if plan["strategy"] not in ("llm", "hybrid"):
        return
    goal = await peers.get_for_event(event, f"/v1/goals/{event.goal_id}")
    learned = generalise(goal["text"], plan["body"])
    if learned is None:
        logger.info("nothing general to learn from the run", extra={"run_id": str(event.run_id)})
        return
    active = event.score >= settings.learning_template_active_score
    template = {
        "name": "learned-" + hashlib.sha256(learned.pattern.lower().encode()).hexdigest()[:12],
        "description": f"Learned from run {event.run_id} (score {event.score:.2f}): {goal['text'][:300]}",
        "patterns": [learned.pattern],
        "parameters": learned.parameters,
        "body": learned.body,
        "status": "active" if active else "proposed",
        "origin": "learned",
        "lineage": {
            "run_id": str(event.run_id),
            "goal_id": str(event.goal_id),
            "plan_id": str(event.plan_id),
            "score": event.score,
        },
    }
    response = await peers.call(
        "POST", "/v1/plan-templates", tenant_id=event.tenant_id, correlation_id=event.correlation_id, json=template
    )
    if response.status_code == 409:
        return  # learned already (the same phrase), or the event came twice
    if response.status_code == 422:
        logger.info("the learned template was refused", extra={"detail": response.text[:500]})
        return
    if response.status_code != 201:
        raise RuntimeError(f"planning answered {response.status_code}")  # retried, then dead-lettered
