"""An agent task's conversation, as the runtime (L02) holds it with the model and as learning (L07) turns it into
training examples: the opening (the agent's system prompt, the task with its input and the answer's schema), then
each recorded step (a model turn; the results of its tool calls). One place, so what a model is trained on is what
it was shown."""

from __future__ import annotations

import json
from typing import Any

DEFAULT_SYSTEM = "You are an agent of the Strata platform. Do the task you are given, using the tools when they help."
TOOL_RESULT_CHARS = 100_000


def opening(system_prompt: str | None, definition: dict[str, Any], task_input: Any) -> list[dict[str, Any]]:
    """The system and user messages an agent task starts with."""
    task = f"Task: {definition.get('title', '')}"
    if definition.get("instructions"):
        task += f"\n\n{definition['instructions']}"
    if task_input:
        task += "\n\nInput:\n" + json.dumps(task_input, ensure_ascii=False, default=str)
    if definition.get("output_schema"):
        task += "\n\nAnswer with JSON matching this schema:\n" + json.dumps(definition["output_schema"])
    return [{"role": "system", "content": system_prompt or DEFAULT_SYSTEM}, {"role": "user", "content": task}]


def assistant(detail: dict[str, Any]) -> dict[str, Any]:
    """A recorded model turn as the assistant's message."""
    return {"role": "assistant", "content": detail.get("content") or "", "tool_calls": detail.get("tool_calls", [])}


def tool_message(result: dict[str, Any]) -> dict[str, Any]:
    """A recorded tool call's result as the tool's message."""
    if result["status"] == "succeeded":
        content = json.dumps(result.get("output"), ensure_ascii=False, default=str)
    else:
        content = json.dumps({"error": result.get("error")}, ensure_ascii=False, default=str)
    return {
        "role": "tool",
        "tool_call_id": result["id"],
        "name": result["name"],
        "content": content[:TOOL_RESULT_CHARS],
    }


def replay(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages recorded steps add to the opening, in order."""
    messages: list[dict[str, Any]] = []
    for step in steps:
        if step["kind"] == "model":
            messages.append(assistant(step["detail"]))
        elif step["kind"] == "tools":
            messages += [tool_message(r) for r in step["detail"]["results"]]
    return messages
