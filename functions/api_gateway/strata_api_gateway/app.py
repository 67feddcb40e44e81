"""L09 API gateway: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_api_gateway.routes import api_keys, cors, docs, tenants, usage

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(("request_log", "usage_daily", "api_keys", "tenants"))


def create_app() -> FastAPI:
    """Build the L09 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="api_gateway",
        title="Strata L09 API gateway",
        routers=[api_keys.router, tenants.router, usage.router, docs.router, cors.router],
        tenant_tables=TENANT_TABLES,
    )
