"""Structured output: an answer must parse and validate against the request's JSON Schema, and every tool call
must name a requested tool with arguments that validate against its parameters. A failing answer is re-asked
once with the validation error; what still fails is the model's failure (the router moves on)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from strata.errors import InvalidInputError
from strata_model_gateway.providers.base import ChatRequest, ChatResult, Message


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_json))


def check_schema(schema: dict[str, Any], what: str) -> None:
    """422 for a schema that is not a valid JSON Schema (2020-12)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidInputError(f"{what} is not a valid JSON Schema: {exc.message}") from exc


def _first_error(schema: dict[str, Any], value: Any) -> str | None:
    error = next(iter(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def problem_with(request: ChatRequest, result: ChatResult) -> str | None:
    """Why the answer does not satisfy the request (None when it does)."""
    if result.tool_calls:
        tools = {t.name: t for t in request.tools}
        for call in result.tool_calls:
            tool = tools.get(call.name)
            if tool is None:
                return f"the tool call names {call.name!r}, which is not one of the offered tools"
            error = _first_error(tool.parameters, call.arguments)
            if error is not None:
                return f"the arguments of the {call.name!r} call do not match its parameters {error}"
        return None
    if request.json_schema is None:
        return None
    try:
        value = json.loads(result.content)
    except ValueError:
        return "the answer is not JSON"
    return _first_error(request.json_schema, value)


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
