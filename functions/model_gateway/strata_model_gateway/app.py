"""L04 model gateway: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_model_gateway.routes import budgets, chat, models

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(("model_usage", "budgets", "models"))


def create_app() -> FastAPI:
    """Build the L04 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="model_gateway",
        title="Strata L04 model gateway",
        routers=[chat.router, models.router, budgets.router],
        self_limiting_paths=chat.SELF_LIMITING_PATHS,
        tenant_tables=TENANT_TABLES,
    )
