"""Remote MCP servers: a tenant registers one by URL (streamable HTTP) and its tools become the tenant's Strata
tools, named `mcp_<server>_<tool>`, called through the same ledger, settings, limits and schemas as a built-in.

The `mcp` SDK speaks the protocol (initialize, tools/list, tools/call). The URL is vetted like http_request's
targets before every connection (no private, loopback or metadata addresses unless the operator's private hosts
name it) and redirects are not followed. Headers given at registration (an API key, a bearer token) are sent on
every request and never shown back."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from strata import db
from strata.errors import ConflictError, DependencyUnavailableError, InvalidInputError, NotFoundError
from strata.pagination import PageRequest, Where, fetch_page
from strata_tool_execution.definitions import ToolContext, ToolDefinition, ToolFailure
from strata_tool_execution.runners import PRIVATE_HOSTS_ENV

PREFIX = "mcp_"
CONNECT_TIMEOUT_S = 15.0
MAX_TOOLS = 200
SERVER_COLUMNS = "server_id, name, url, headers, enabled, server_info, tools, version, refreshed_at, created_at"
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "content": {"type": "array", "description": "The MCP content blocks (text, image, resource...)"},
        "structured": {"description": "The tool's structured result, when it gives one"},
    },
    "required": ["content"],
}


def strata_name(server: str, remote: str, taken: set[str]) -> str:
    """A Strata tool name for a server's tool: lower case, [a-z0-9_], at most 64 characters, unique."""
    base = (PREFIX + server + "_" + re.sub(r"[^a-z0-9_]+", "_", remote.lower()).strip("_"))[:64]
    name, n = base, 2
    while name in taken:
        suffix = f"_{n}"
        name, n = base[: 64 - len(suffix)] + suffix, n + 1
    return name


def definition(server: dict[str, Any], tool: dict[str, Any]) -> ToolDefinition:
    return ToolDefinition(
        name=tool["name"],
        version=int(server["version"]),
        description=(tool.get("description") or f"{tool['remote_name']} on the MCP server {server['name']}")[:4000],
        input_schema=tool.get("input_schema") or {"type": "object"},
        output_schema=OUTPUT_SCHEMA,
        run="strata_tool_execution.mcp_servers:call",
        timeout_s=120.0,
        side_effects=True,
    )


def _private_hosts() -> tuple[str, ...]:
    return tuple(h.strip() for h in os.environ.get(PRIVATE_HOSTS_ENV, "").split(",") if h.strip())


async def _vet(url: str) -> None:
    from strata_tool_execution.builtins.http_request import HttpToolError, vet_endpoint

    try:
        await vet_endpoint(url, _private_hosts(), what="the MCP server's URL")
    except HttpToolError as exc:
        raise ToolFailure("denied" if exc.kind == "denied" else exc.kind, exc.message) from exc


def _client_factory(
    headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None
) -> Any:  # an httpx.AsyncClient
    import httpx

    return httpx.AsyncClient(headers=headers, timeout=timeout, auth=auth, follow_redirects=False)


@asynccontextmanager
async def _session(url: str, headers: dict[str, str], timeout_s: float) -> AsyncIterator[tuple[Any, Any]]:
    """One MCP session over streamable HTTP, initialized: (the SDK's ClientSession, what initialize answered)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    await _vet(url)
    transport = streamablehttp_client(
        url, headers=headers, timeout=timeout_s, sse_read_timeout=timeout_s, httpx_client_factory=_client_factory
    )
    async with (
        transport as (read, write, _),
        ClientSession(read, write, read_timeout_seconds=timedelta(seconds=timeout_s)) as session,
    ):
        yield session, await session.initialize()


async def _discover(name: str, url: str, headers: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What the server says it is, and its tools (every page), as stored."""
    try:
        async with _session(url, headers, CONNECT_TIMEOUT_S) as (session, initialized):
            remote: list[Any] = []
            cursor: str | None = None
            while True:
                page = await session.list_tools(cursor)
                remote += page.tools
                cursor = page.nextCursor
                if not cursor or len(remote) >= MAX_TOOLS:
                    break
        info = {
            "name": initialized.serverInfo.name,
            "version": initialized.serverInfo.version,
            "protocol_version": str(initialized.protocolVersion),
        }
    except ToolFailure as exc:
        raise InvalidInputError(f"the MCP server cannot be used: {exc.message}") from exc
    except Exception as exc:  # the SDK raises ExceptionGroups, httpx errors, McpError...
        raise DependencyUnavailableError(f"the MCP server at {url} did not answer as MCP: {_reason(exc)}") from exc
    taken: set[str] = set()
    tools = []
    for tool in remote[:MAX_TOOLS]:
        strata = strata_name(name, tool.name, taken)
        taken.add(strata)
        tools.append(
            {
                "name": strata,
                "remote_name": tool.name,
                "description": tool.description or "",
                "input_schema": tool.inputSchema or {"type": "object"},
                "output_schema": tool.outputSchema,
            }
        )
    return info, tools


def _reason(exc: BaseException) -> str:
    """The innermost useful message of an exception (the SDK wraps failures in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:500]


# ---- the store -----------------------------------------------------------------------------------------------------


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A server as the API shows it: header names only, never their values."""
    server = dict(row)
    server["headers"] = sorted(server["headers"])
    return server


async def register(tenant_id: UUID, name: str, url: str, headers: dict[str, str]) -> dict[str, Any]:
    info, tools = await _discover(name, url, headers)
    server_id = uuid4()
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO mcp_servers (server_id, tenant_id, name, url, headers, server_info, tools)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, name) DO NOTHING
                RETURNING {SERVER_COLUMNS}""",  # noqa: S608 - constant columns
            server_id,
            tenant_id,
            name,
            url,
            headers,
            info,
            tools,
        )
    if row is None:
        raise ConflictError(f"an MCP server named {name!r} is registered already")
    return view(dict(row))


async def refresh(tenant_id: UUID, server_id: UUID) -> dict[str, Any]:
    server = await get(tenant_id, server_id, raw=True)
    info, tools = await _discover(server["name"], server["url"], server["headers"])
    rows = await db.fetch(
        f"""UPDATE mcp_servers SET tools = $2, server_info = $3, version = version + 1, refreshed_at = now()
            WHERE server_id = $1 RETURNING {SERVER_COLUMNS}""",  # noqa: S608 - constant columns
        server_id,
        tools,
        info,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no MCP server {server_id}")
    return view(dict(rows[0]))


async def get(tenant_id: UUID, server_id: UUID, raw: bool = False) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {SERVER_COLUMNS} FROM mcp_servers WHERE server_id = $1",  # noqa: S608 - constant columns
        server_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no MCP server {server_id}")
    return dict(rows[0]) if raw else view(dict(rows[0]))


async def delete(tenant_id: UUID, server_id: UUID) -> None:
    rows = await db.fetch("DELETE FROM mcp_servers WHERE server_id = $1 RETURNING true", server_id, tenant_id=tenant_id)
    if not rows:
        raise NotFoundError(f"no MCP server {server_id}")


async def list_page(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    items, cursor = await fetch_page("mcp_servers", SERVER_COLUMNS, "server_id", Where(tenant_id), page)
    return [view(i) for i in items], cursor


async def tools_on(conn: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every (server, tool) of the tenant's enabled servers, in the caller's tenant-scoped transaction."""
    rows = await conn.fetch(f"SELECT {SERVER_COLUMNS} FROM mcp_servers WHERE enabled ORDER BY name")  # noqa: S608
    return [(dict(r), t) for r in rows for t in r["tools"]]


async def tool_on(conn: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (server, tool) a Strata tool name stands for, if the tenant has it."""
    row = await conn.fetchrow(
        f"""SELECT {SERVER_COLUMNS}, t AS tool FROM mcp_servers, jsonb_array_elements(tools) t
            WHERE enabled AND t->>'name' = $1""",  # noqa: S608 - constant columns
        name,
    )
    if row is None:
        return None
    server = dict(row)
    return server, server.pop("tool")


def target(server: dict[str, Any], tool: dict[str, Any]) -> dict[str, Any]:
    return {"url": server["url"], "headers": server["headers"], "tool": tool["remote_name"]}


# ---- the runner ----------------------------------------------------------------------------------------------------


async def call(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """tools/call on the server; its content blocks (and structured result). A tool error is a failed call."""
    where = context.target
    try:
        async with _session(where["url"], where["headers"], context.timeout_s) as (session, _):
            result = await session.call_tool(
                where["tool"], arguments, read_timeout_seconds=timedelta(seconds=context.timeout_s)
            )
    except ToolFailure:
        raise
    except Exception as exc:
        raise ToolFailure("unreachable", f"the MCP server did not complete the call: {_reason(exc)}") from exc
    content = [block.model_dump(mode="json", exclude_none=True) for block in result.content]
    if result.isError:
        text = " ".join(b.get("text", "") for b in content if b.get("type") == "text")[:2000]
        raise ToolFailure("error", text or "the MCP tool reported an error")
    answer: dict[str, Any] = {"content": content}
    if result.structuredContent is not None:
        answer["structured"] = json.loads(json.dumps(result.structuredContent, default=str))
    return answer
