"""L09 API gateway: the FastAPI app."""

from fastapi import FastAPI

from strata.web import create_service_app
from strata_api_gateway.routes import api_keys, cors, docs, tenants, usage


def create_app() -> FastAPI:
    """Build the L09 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="api_gateway",
        title="Strata L09 API gateway",
        routers=[api_keys.router, tenants.router, usage.router, docs.router, cors.router],
    )
