"""Remote MCP servers of the tenant: register one by URL (its tools become Strata tools), read, refresh its tool
list, remove it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_tool_execution import mcp_servers

router = APIRouter(tags=["tools"])


class McpTool(BaseModel):
    name: str = Field(description="The Strata tool name (mcp_<server>_<tool>)")
    remote_name: str = Field(description="The tool's name on the server")
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None


class McpServer(BaseModel):
    server_id: UUID
    name: str
    url: str
    headers: list[str] = Field(description="The names of the headers sent on every request (values never shown)")
    enabled: bool
    server_info: dict[str, Any] = Field(description="What the server said it is: name, version, protocol version")
    tools: list[McpTool]
    version: int = Field(description="Increases with each refresh of the tool list")
    refreshed_at: datetime
    created_at: datetime


class McpServerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,19}$", description="Short: it prefixes the tools' names")
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://", description="The streamable HTTP endpoint")
    headers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,100}$")], Annotated[str, Field(max_length=8000)]] = (
        Field(default_factory=dict, max_length=20, description="e.g. Authorization; stored, never shown back")
    )


@router.post(
    "/v1/mcp-servers",
    status_code=201,
    response_model=McpServer,
    summary="Register a remote MCP server by URL; its tools become this tenant's tools.",
)
async def register_server(
    body: McpServerCreate, response: Response, principal: Annotated[Principal, Depends(require_scope("tools:write"))]
) -> dict[str, Any]:
    """Register a remote MCP server (streamable HTTP): it is connected and its tools listed now."""
    server = await mcp_servers.register(principal.tenant_id, body.name, body.url, body.headers)
    response.headers["Location"] = f"/v1/mcp-servers/{server['server_id']}"
    return server


@router.get("/v1/mcp-servers", response_model=Page[McpServer], summary="The tenant's MCP servers, newest first.")
async def list_servers(
    principal: Annotated[Principal, Depends(require_scope("tools:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """The tenant's MCP servers, newest first."""
    items, cursor = await mcp_servers.list_page(principal.tenant_id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/v1/mcp-servers/{server_id}", response_model=McpServer, summary="One MCP server with its tools.")
async def get_server(
    server_id: UUID, principal: Annotated[Principal, Depends(require_scope("tools:read"))]
) -> dict[str, Any]:
    """One MCP server with its tools."""
    return await mcp_servers.get(principal.tenant_id, server_id)


@router.post(
    "/v1/mcp-servers/{server_id}/refresh",
    response_model=McpServer,
    summary="List the server's tools again (a new version).",
)
async def refresh_server(
    server_id: UUID, principal: Annotated[Principal, Depends(require_scope("tools:write"))]
) -> dict[str, Any]:
    """List the server's tools again; the tools change with the answer (a new version)."""
    return await mcp_servers.refresh(principal.tenant_id, server_id)


@router.delete("/v1/mcp-servers/{server_id}", status_code=204, summary="Remove an MCP server and its tools.")
async def delete_server(
    server_id: UUID, principal: Annotated[Principal, Depends(require_scope("tools:write"))]
) -> Response:
    """Remove an MCP server; its tools are no longer callable (calls already made stay in the ledger)."""
    await mcp_servers.delete(principal.tenant_id, server_id)
    return Response(status_code=204)
