"""L06 evaluation: the FastAPI app."""

from fastapi import FastAPI

from strata.web import create_service_app
from strata_evaluation.routes import alerts, evaluations, quality, regression


def create_app() -> FastAPI:
    """Build the L06 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="evaluation",
        title="Strata L06 evaluation",
        routers=[evaluations.router, quality.router, alerts.router, regression.router],
    )
