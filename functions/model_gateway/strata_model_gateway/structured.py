"""Structured output: an answer must parse and validate against the request's JSON Schema, and every tool call
must name a requested tool with arguments that validate against its parameters. A failing answer is re-asked
once with the validation error; what still fails is the model's failure (the router moves on)."""

from __future__ import annotations

import json

from strata.jsonschemas import first_error
from strata_model_gateway.providers.base import ChatRequest, ChatResult, Message


def problem_with(request: ChatRequest, result: ChatResult) -> str | None:
    """Why the answer does not satisfy the request (None when it does)."""
    if result.tool_calls:
        tools = {t.name: t for t in request.tools}
        for call in result.tool_calls:
            tool = tools.get(call.name)
            if tool is None:
                return f"the tool call names {call.name!r}, which is not one of the offered tools"
            error = first_error(tool.parameters, call.arguments)
            if error is not None:
                return f"the arguments of the {call.name!r} call do not match its parameters {error}"
        return None
    if request.json_schema is None:
        return None
    try:
        value = json.loads(result.content)
    except ValueError:
        return "the answer is not JSON"
    return first_error(request.json_schema, value)


def repair_request(request: ChatRequest, result: ChatResult, problem: str) -> ChatRequest:
    """The same request with the failed answer and what was wrong with it appended, asking once more."""
    asked = "a JSON value matching the schema" if request.json_schema is not None else "a valid tool call"
    # the failed answer goes back as text: an assistant turn with tool calls would need tool results after it
    said = result.content or json.dumps([{"tool": c.name, "arguments": c.arguments} for c in result.tool_calls])
    follow_up = (
        Message(role="assistant", content=said),
        Message(role="user", content=f"That answer was invalid: {problem}. Reply again with only {asked}."),
    )
    return ChatRequest(
        model=request.model,
        messages=request.messages + follow_up,
        tools=request.tools,
        json_schema=request.json_schema,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        stop=request.stop,
        timeout_s=request.timeout_s,
    )
