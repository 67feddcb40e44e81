"""The `json_query` tool: a JMESPath expression (the AWS CLI's `--query` language) applied to a JSON value, so a
task can pick and reshape the data an earlier task produced without a model turn."""

from __future__ import annotations

from typing import Any

from strata_tool_execution.definitions import ToolContext, ToolFailure

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {"description": "The JSON value to query"},
        "query": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "A JMESPath expression"},
    },
    "required": ["data", "query"],
    "additionalProperties": False,
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"result": {"description": "What the expression selected (null when nothing matched)"}},
    "required": ["result"],
}


async def run(arguments: dict[str, Any], _: ToolContext) -> dict[str, Any]:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return {"result": jmespath.search(arguments["query"], arguments["data"])}
    except JMESPathError as exc:
        raise ToolFailure("bad_input", f"the query is not valid JMESPath: {str(exc).splitlines()[0]}") from exc
