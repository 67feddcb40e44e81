"""L01 data layer: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_data.routes import agents, configurations, dead_letters, documents, events, retention, sessions

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(
    (
        "sessions",
        "document_versions",
        "documents",
        "configuration_versions",
        "configurations",
        "agents",
        "dead_letters",
        "retention_runs",
        "retention_settings",
        "event_log",
    ),
    erase_elsewhere="strata_data.retention:erase_tenant_archive",
)


def create_app() -> FastAPI:
    """Build the L01 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="data",
        title="Strata L01 data layer",
        routers=[
            agents.router,
            documents.router,
            configurations.router,
            sessions.router,
            events.router,
            dead_letters.router,
            retention.router,
        ],
        tenant_tables=TENANT_TABLES,
    )
