"""L02 runtime: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_runtime.routes import runs, summary

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(("task_steps", "task_executions", "runs"))


def create_app() -> FastAPI:
    """Build the L02 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="runtime", title="Strata L02 runtime", routers=[runs.router, summary.router], tenant_tables=TENANT_TABLES
    )
