"""L02 runtime: the FastAPI app."""

from fastapi import FastAPI

from strata.web import create_service_app
from strata_runtime.routes import runs, summary


def create_app() -> FastAPI:
    """Build the L02 app (no I/O happens until a request needs it)."""
    return create_service_app(layer="runtime", title="Strata L02 runtime", routers=[runs.router, summary.router])
