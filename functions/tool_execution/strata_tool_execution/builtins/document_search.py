"""The `document_search` tool: full-text search over the tenant's documents, which L01 owns, through L01's public
API (as this service acting for the tenant), returning the best matches with an excerpt or their content."""

from __future__ import annotations

from typing import Any

from strata import peers
from strata_tool_execution.definitions import ToolContext, ToolFailure

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 500, "description": "Words to look for (web syntax)"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 20, "description": "Most documents returned (5)"},
        "content_chars": {
            "type": "integer",
            "minimum": 0,
            "maximum": 20000,
            "description": "Characters of each document's content returned (500; 0: none)",
        },
    },
    "required": ["query"],
    "additionalProperties": False,
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "documents": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "document_id": {"type": "string"},
                    "title": {"type": "string"},
                    "content_type": {"type": "string"},
                    "metadata": {"type": "object"},
                    "version": {"type": "integer"},
                    "content": {"type": "string"},
                    "truncated": {"type": "boolean"},
                },
                "required": ["document_id", "title", "content", "truncated"],
            },
        }
    },
    "required": ["documents"],
}


async def _get(path: str, context: ToolContext, params: dict[str, Any] | None = None) -> Any:
    response = await peers.call("GET", path, tenant_id=context.tenant_id, params=params)
    if response.status_code != 200:
        raise ToolFailure("unreachable", f"the data layer answered {response.status_code} to {path}")
    return response.json()


async def run(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    limit = arguments.get("limit", 5)
    chars = arguments.get("content_chars", 500)
    page = await _get("/v1/documents", context, {"q": arguments["query"], "limit": limit})
    found = []
    for summary in page["items"][:limit]:
        content = ""
        if chars:
            document = await _get(f"/v1/documents/{summary['document_id']}", context)
            content = str(document.get("content", ""))
        found.append(
            {
                "document_id": str(summary["document_id"]),
                "title": summary["title"],
                "content_type": summary["content_type"],
                "metadata": summary["metadata"],
                "version": summary["version"],
                "content": content[:chars],
                "truncated": len(content) > chars,
            }
        )
    return {"documents": found}
