"""L08 supervision: the FastAPI app."""

from fastapi import FastAPI

from strata.web import create_service_app
from strata_supervision.routes import approvals, audit, decisions, policies, suspensions


def create_app() -> FastAPI:
    """Build the L08 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="supervision",
        title="Strata L08 supervision",
        routers=[policies.router, decisions.router, approvals.router, audit.router, suspensions.router],
    )
