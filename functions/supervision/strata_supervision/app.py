"""L08 supervision: the FastAPI app."""

from fastapi import FastAPI

from strata.tenant_data import TenantTables
from strata.web import create_service_app
from strata_supervision.routes import approvals, audit, decisions, policies, suspensions

# What the layer holds for a tenant, children first (erased by the tenant-deletion saga through strata.tenant_data).
TENANT_TABLES = TenantTables(
    (
        "approval_votes",
        "approvals",
        "decisions",
        "audit_log",
        "audit_heads",
        "suspensions",
        "policy_revisions",
        "policy_versions",
        "policies",
    )
)


def create_app() -> FastAPI:
    """Build the L08 app (no I/O happens until a request needs it)."""
    return create_service_app(
        layer="supervision",
        title="Strata L08 supervision",
        routers=[policies.router, decisions.router, approvals.router, audit.router, suspensions.router],
        tenant_tables=TENANT_TABLES,
    )
