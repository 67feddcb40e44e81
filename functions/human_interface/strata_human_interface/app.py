"""L10 human interface: the FastAPI app."""

from fastapi import FastAPI

from strata.web import create_service_app
from strata_human_interface.routes import console, views


def create_app() -> FastAPI:
    """Build the L10 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="human_interface", title="Strata L10 human interface", routers=[console.router, views.router]
    )
