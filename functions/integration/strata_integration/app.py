"""L11 integration: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_integration.routes import inbound, sagas, schedules, status, webhooks

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
# Sagas are not among them: a saga belongs to the operator's tenant that ran it, not to the tenant it acted on.
TENANT_TABLES = TenantTables(
    (
        "webhook_delivery_attempts",
        "webhook_deliveries",
        "webhooks",
        "inbound_webhook_deliveries",
        "inbound_webhooks",
        "schedule_runs",
        "schedules",
    ),
    # the tenant's EventBridge Scheduler schedules go first, so none fires while its rows are erased
    erase_elsewhere="strata_integration.schedules.service:erase_tenant_schedules",
)


def create_app() -> FastAPI:
    """Build the L11 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="integration",
        title="Strata L11 integration",
        routers=[status.router, webhooks.router, inbound.router, schedules.router, sagas.router],
        tenant_tables=TENANT_TABLES,
    )
