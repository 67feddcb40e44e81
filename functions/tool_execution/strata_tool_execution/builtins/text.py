"""The `text` tool: everyday text operations a plan needs between model turns (counting, splitting, joining,
replacing, trimming to a length, changing case, extracting between markers), deterministic and cheap. No regular
expressions: a hostile pattern could run for minutes."""

from __future__ import annotations

from typing import Any

from strata_tool_execution.definitions import ToolContext, ToolFailure

OPERATIONS = ("count", "split", "join", "replace", "truncate", "lower", "upper", "strip", "between")
MAX_TEXT = 1_000_000

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operation": {"enum": list(OPERATIONS)},
        "text": {"type": "string", "maxLength": MAX_TEXT},
        "parts": {"type": "array", "items": {"type": "string"}, "maxItems": 10000, "description": "for join"},
        "separator": {"type": "string", "maxLength": 100, "description": "for split and join (default newline)"},
        "old": {"type": "string", "minLength": 1, "maxLength": 10000, "description": "for replace"},
        "new": {"type": "string", "maxLength": 10000, "description": "for replace"},
        "length": {"type": "integer", "minimum": 0, "description": "for truncate: most characters kept"},
        "start": {"type": "string", "minLength": 1, "maxLength": 1000, "description": "for between"},
        "end": {"type": "string", "minLength": 1, "maxLength": 1000, "description": "for between"},
    },
    "required": ["operation"],
    "additionalProperties": False,
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"result": {"type": ["string", "array", "object"]}},
    "required": ["result"],
}


def _need(arguments: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if n not in arguments]
    if missing:
        raise ToolFailure("bad_input", f"`{arguments['operation']}` needs {', '.join(missing)}")


async def run(arguments: dict[str, Any], _: ToolContext) -> dict[str, Any]:
    operation = arguments["operation"]
    if operation != "join":
        _need(arguments, "text")
    text: str = arguments.get("text", "")
    separator: str = arguments.get("separator", "\n")
    result: Any
    if operation == "count":
        result = {"characters": len(text), "words": len(text.split()), "lines": len(text.splitlines())}
    elif operation == "split":
        if separator == "":
            raise ToolFailure("bad_input", "the separator of `split` must not be empty")
        result = text.split(separator)
    elif operation == "join":
        _need(arguments, "parts")
        result = separator.join(arguments["parts"])
        if len(result) > MAX_TEXT:
            raise ToolFailure("too_large", f"the joined text would exceed {MAX_TEXT} characters")
    elif operation == "replace":
        _need(arguments, "old", "new")
        replaced = text.count(arguments["old"]) * max(0, len(arguments["new"]) - len(arguments["old"]))
        if len(text) + replaced > MAX_TEXT:
            raise ToolFailure("too_large", f"the replaced text would exceed {MAX_TEXT} characters")
        result = text.replace(arguments["old"], arguments["new"])
    elif operation == "truncate":
        _need(arguments, "length")
        result = text[: arguments["length"]]
    elif operation in ("lower", "upper", "strip"):
        result = getattr(text, operation)()
    else:  # between
        _need(arguments, "start", "end")
        result = []
        at = 0
        while (begin := text.find(arguments["start"], at)) != -1:
            begin += len(arguments["start"])
            finish = text.find(arguments["end"], begin)
            if finish == -1:
                break
            result.append(text[begin:finish])
            at = finish + len(arguments["end"])
    return {"result": result}
