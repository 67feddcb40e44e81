"""The built-in tools every tenant has (each tenant may disable one, require approval for it, lower its limits
and, for `http_request`, name the hosts it may call). Their code lives in `builtins/`, adapted in `runners`."""

from __future__ import annotations

from typing import Any

from strata_tool_execution.builtins import document_search, json_query, text
from strata_tool_execution.definitions import ToolDefinition

HTTP_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "minLength": 1, "maxLength": 8000},
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "json": {"description": "A JSON body (not with `body`)"},
        "body": {"type": "string", "description": "A text body (not with `json`)"},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0},
    },
    "required": ["url"],
    "additionalProperties": False,
}
HTTP_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "integer"},
        "headers": {"type": "object"},
        "body": {"type": "string"},
        "json": {},
        "url": {"type": "string"},
        "elapsed_ms": {"type": "number"},
    },
    "required": ["status", "headers", "body", "url"],
}
HTTP_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "allowed_hosts": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 300},
            "maxItems": 500,
            "description": 'Hosts the tool may call: "api.example.com", "*.example.com", "host:8443", or "*"',
        }
    },
    "additionalProperties": False,
}
PYTHON_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "minLength": 1, "maxLength": 100_000, "description": "Sets `result` to answer"},
        "inputs": {"type": "object", "description": "Available to the code as `inputs`"},
    },
    "required": ["code"],
    "additionalProperties": False,
}
PYTHON_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"result": {}, "stdout": {"type": "string"}, "stderr": {"type": "string"}},
    "required": ["result", "stdout", "stderr"],
}


def _builtins() -> dict[str, ToolDefinition]:
    tools = [
        ToolDefinition(
            name="json_query",
            version=1,
            description="Select and reshape JSON data with a JMESPath expression.",
            input_schema=json_query.INPUT_SCHEMA,
            output_schema=json_query.OUTPUT_SCHEMA,
            run="strata_tool_execution.builtins.json_query:run",
            timeout_s=5.0,
            instant=True,
        ),
        ToolDefinition(
            name="text",
            version=1,
            description="Count, split, join, replace, truncate, change case, strip, or extract text between markers.",
            input_schema=text.INPUT_SCHEMA,
            output_schema=text.OUTPUT_SCHEMA,
            run="strata_tool_execution.builtins.text:run",
            timeout_s=5.0,
            instant=True,
        ),
        ToolDefinition(
            name="http_request",
            version=1,
            description="Call an HTTP(S) API on the tenant's allowlist (private and metadata addresses refused).",
            input_schema=HTTP_INPUT,
            output_schema=HTTP_OUTPUT,
            run="strata_tool_execution.runners:http",
            timeout_s=30.0,
            side_effects=True,
            config_schema=HTTP_CONFIG,
            config_check="strata_tool_execution.runners:check_http_config",
        ),
        ToolDefinition(
            name="document_search",
            version=1,
            description="Search the tenant's documents (full text) and return the best matches with their content.",
            input_schema=document_search.INPUT_SCHEMA,
            output_schema=document_search.OUTPUT_SCHEMA,
            run="strata_tool_execution.builtins.document_search:run",
            timeout_s=15.0,
        ),
        ToolDefinition(
            name="python",
            version=1,
            description="Run Python code in a sandbox (no network, CPU/memory/time limits, a scratch directory).",
            input_schema=PYTHON_INPUT,
            output_schema=PYTHON_OUTPUT,
            run="strata_tool_execution.runners:python",
            timeout_s=30.0,
        ),
    ]
    return {t.name: t for t in tools}


BUILTINS: dict[str, ToolDefinition] = _builtins()
