"""Training examples: the conversations of agent tasks from runs that passed their quality gates (the run passed
evaluation with a score at or above the minimum, supervision denied none of its calls, and nobody rated it badly),
and corrections people gave as feedback. Each is a chat (the agent's system prompt, the task, every model turn and
tool result, the answer) with its lineage (run, task, goal, agent, feedback); the same conversation is kept once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata import conversations, db, peers
from strata.errors import InvalidInputError, NotFoundError
from strata.events.evaluation import RunEvaluated
from strata.pagination import PageRequest, Where, fetch_page
from strata.plans import canonical
from strata_learning.settings import learning_settings

logger = Logger(child=True)

COLUMNS = (
    "example_id, source, run_id, task_id, goal_id, agent_id, feedback_id, messages, output, score, labels,"
    " status, excluded_reason, created_at"
)
NEGATIVE_RATING = 2  # a rating at or below this excludes the run's examples


@dataclass(frozen=True)
class Conversation:
    messages: list[dict[str, Any]]
    output: Any
    agent_id: UUID | None


async def conversation(
    tenant_id: UUID, correlation_id: str, run_id: UUID, task_id: str, answer: Any = None
) -> Conversation:
    """The task's conversation in its last attempt, read from the runtime (L02) and the agent (L01); with `answer`,
    the model's final turn is replaced by it (a correction)."""
    task = await peers.get_json(
        f"/v1/runs/{run_id}/tasks/{task_id}", tenant_id=tenant_id, correlation_id=correlation_id
    )
    if task["kind"] != "agent":
        raise InvalidInputError(f"task {task_id} is a tool task; only an agent task's conversation can be learned")
    system = None
    if task.get("agent_id"):
        agent = await peers.get_json(
            f"/v1/agents/{task['agent_id']}", tenant_id=tenant_id, correlation_id=correlation_id
        )
        system = agent.get("system_prompt")
    steps: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await peers.get_json(
            f"/v1/runs/{run_id}/tasks/{task_id}/steps?limit=200" + (f"&cursor={cursor}" if cursor else ""),
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        steps += [s for s in page["items"] if s["attempt"] == task["attempt"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    messages = conversations.opening(system, task, task.get("input"))
    messages += conversations.replay(steps)
    output = task.get("output")
    if answer is not None:
        while messages and messages[-1]["role"] == "assistant" and not messages[-1].get("tool_calls"):
            messages.pop()
        text = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
        messages.append({"role": "assistant", "content": text, "tool_calls": []})
        output = answer
    agent_id = UUID(str(task["agent_id"])) if task.get("agent_id") else None
    return Conversation(messages, output, agent_id)


def content_hash(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical({"messages": messages})).hexdigest()


async def on_run_evaluated(event: RunEvaluated) -> None:
    """Keep the conversations of a run that passed its gates (see consumers) and scored at least the minimum as
    training examples (once, however often the event comes)."""
    if event.score < learning_settings().learning_min_score:
        return
    disliked = await db.fetch(
        "SELECT 1 FROM feedback WHERE run_id = $1 AND rating <= $2 LIMIT 1",
        event.run_id,
        NEGATIVE_RATING,
        tenant_id=event.tenant_id,
    )
    if disliked:
        return
    run = await peers.get_for_event(event, f"/v1/runs/{event.run_id}")
    agent_tasks = [t for t in run["tasks"] if t["kind"] == "agent" and t["status"] == "completed"]
    if not agent_tasks:
        return
    scored = await peers.get_for_event(event, f"/v1/evaluations?run_id={event.run_id}&subject_type=task&limit=200")
    scores = {e["task_id"]: e for e in scored["items"]}
    rows: list[tuple[Any, ...]] = []
    for task in agent_tasks:
        evaluation = scores.get(task["task_id"])
        if evaluation is not None and not evaluation["passed"]:
            continue
        found = await conversation(event.tenant_id, event.correlation_id, event.run_id, task["task_id"])
        score = float(evaluation["score"]) if evaluation else event.score
        rows.append((uuid4(), "run", event.run_id, task["task_id"], event.goal_id, found.agent_id, None,
                     found.messages, found.output, score, [], content_hash(found.messages)))  # fmt: skip
    await _insert(event.tenant_id, rows)


async def _insert(tenant_id: UUID, rows: list[tuple[Any, ...]]) -> int:
    if not rows:
        return 0
    async with db.transaction(tenant_id) as conn:
        inserted = 0
        for row in rows:
            status = await conn.execute(
                """INSERT INTO training_examples (tenant_id, example_id, source, run_id, task_id, goal_id, agent_id,
                       feedback_id, messages, output, score, labels, content_hash)
                   VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                   ON CONFLICT (tenant_id, content_hash) DO NOTHING""",
                *row,
            )
            inserted += int(status.endswith(" 1"))
    return inserted


async def from_correction(
    conn: Any, tenant_id: UUID, feedback_id: UUID, run_id: UUID, task_id: str, found: Conversation, labels: list[str]
) -> None:
    """A person's correction as an example, in the feedback's transaction."""
    await conn.execute(
        """INSERT INTO training_examples (tenant_id, example_id, source, run_id, task_id, agent_id, feedback_id,
               messages, output, labels, content_hash)
           VALUES (strata_tenant(), $1, 'correction', $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (tenant_id, content_hash) DO NOTHING""",
        uuid4(),
        run_id,
        task_id,
        found.agent_id,
        feedback_id,
        found.messages,
        found.output,
        labels,
        content_hash(found.messages),
    )


async def get(tenant_id: UUID, example_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM training_examples WHERE example_id = $1",  # noqa: S608 - constant columns
        example_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no training example {example_id}")
    return dict(rows[0])


async def list_page(
    tenant_id: UUID, page: PageRequest, run_id: UUID | None, status: str | None, source: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(run_id, "run_id = {}").add_if(status, "status = {}").add_if(source, "source = {}")
    return await fetch_page("training_examples", COLUMNS, "example_id", where, page)
