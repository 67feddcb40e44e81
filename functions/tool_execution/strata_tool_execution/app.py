"""L03 tool execution: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_tool_execution.routes import mcp_servers, tools

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(("tool_calls", "tool_settings", "mcp_servers", "tools"))


def create_app() -> FastAPI:
    """Build the L03 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="tool_execution",
        title="Strata L03 tool execution",
        routers=[tools.router, mcp_servers.router],
        tenant_tables=TENANT_TABLES,
    )
