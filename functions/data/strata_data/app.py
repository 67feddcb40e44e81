"""L01 data layer: the FastAPI app."""

from fastapi import FastAPI

from strata.web import create_service_app
from strata_data.routes import agents, configurations, dead_letters, documents, events, retention, sessions


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
    )
