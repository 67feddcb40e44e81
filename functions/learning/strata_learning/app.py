"""L07 learning: the FastAPI app."""

from fastapi import FastAPI

from strata.web import create_service_app
from strata_learning.routes import datasets, examples, feedback


def create_app() -> FastAPI:
    """Build the L07 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="learning",
        title="Strata L07 learning",
        routers=[feedback.router, examples.router, datasets.router],
    )
