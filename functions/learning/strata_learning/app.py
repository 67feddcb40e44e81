"""L07 learning: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_learning.routes import datasets, examples, feedback

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(
    (
        "dataset_exports",
        "dataset_examples",
        "dataset_versions",
        "datasets",
        "training_examples",
        "feedback",
        "fine_tune_jobs",
    ),
    erase_elsewhere="strata_learning.exports:erase_tenant_exports",
)


def create_app() -> FastAPI:
    """Build the L07 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="learning",
        title="Strata L07 learning",
        routers=[feedback.router, examples.router, datasets.router],
        tenant_tables=TENANT_TABLES,
    )
