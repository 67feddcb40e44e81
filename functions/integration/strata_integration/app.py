"""L11 integration: the FastAPI app."""

from fastapi import FastAPI

from strata.web import create_service_app
from strata_integration.routes import inbound, sagas, schedules, status, webhooks


def create_app() -> FastAPI:
    """Build the L11 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="integration",
        title="Strata L11 integration",
        routers=[status.router, webhooks.router, inbound.router, schedules.router, sagas.router],
    )
