"""L06 evaluation: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_evaluation.routes import alerts, evaluations, quality, regression

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(
    (
        "eval_run_cases",
        "eval_runs",
        "eval_datasets",
        "alerts",
        "metrics",
        "quality_scores",
        "evaluations",
        "evaluation_settings",
    )
)


def create_app() -> FastAPI:
    """Build the L06 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="evaluation",
        title="Strata L06 evaluation",
        routers=[evaluations.router, quality.router, alerts.router, regression.router],
        tenant_tables=TENANT_TABLES,
    )
