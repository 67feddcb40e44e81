"""L05 planning: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_planning.routes import goals, templates

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(("plan_templates", "plans", "goals"))


def create_app() -> FastAPI:
    """Build the L05 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="planning",
        title="Strata L05 planning",
        routers=[goals.router, templates.router],
        tenant_tables=TENANT_TABLES,
    )
