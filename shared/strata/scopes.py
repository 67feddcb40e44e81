"""Every scope a credential can hold, with what it allows; routes may only require scopes listed here."""

ADMIN = "admin"  # everything within the tenant
SERVICE = "service"  # layer-to-layer calls (service tokens only; never grantable to a key)
PLATFORM_ADMIN = "platform:admin"  # the operator's: manage every tenant. `admin` does not imply it.
# Erase every row a layer holds for the caller's tenant: only the tenant-deletion saga's service tokens carry it.
TENANT_PURGE = "platform:tenant-purge"

SCOPES: dict[str, str] = {
    ADMIN: "Everything within the tenant, including managing its API keys",
    "agents:read": "Read agents",
    "agents:write": "Register, change and delete agents",
    "documents:read": "Read and search documents",
    "documents:write": "Create, change and delete documents",
    "config:read": "Read configuration",
    "config:write": "Change configuration",
    "sessions:read": "Read sessions",
    "sessions:write": "Open, change and close sessions",
    "events:read": "Query the event log",
    "dead-letters:read": "Inspect dead letters",
    "dead-letters:replay": "Replay dead letters",
    "retention:read": "Read retention settings",
    "retention:write": "Change retention settings",
    "keys:read": "List API keys (never their secrets)",
    "keys:write": "Create, rotate and revoke API keys",
    "tenant:read": "Read the tenant's own record",
    "tenant:write": "Change the tenant's settings (allowed browser origins)",
    "usage:read": "Read the request log and usage summaries",
    PLATFORM_ADMIN: "Create, list, suspend and reactivate tenants (operator keys only; not implied by admin)",
    "goals:read": "Read goals, plans and plan templates (and match a goal's text to a template)",
    "goals:write": "Submit goals and manage plan templates",
    "runs:read": "Read runs and their tasks",
    "runs:write": "Pause, resume, cancel and retry runs",
    "tools:read": "Read the tool registry and the tool-call ledger",
    "tools:write": "Change tools' settings for the tenant (enabled, approval, limits, the HTTP allowlist)",
    "tools:invoke": "Call tools (each call recorded in the ledger and never made twice)",
    "models:read": "Read the model catalogue and model usage",
    "models:write": "Add, change and remove the tenant's catalogue entries",
    "models:invoke": "Call models (chat, completions, embeddings)",
    "budgets:read": "Read budgets and what they have spent",
    "budgets:write": "Create, change and delete budgets",
    "evaluations:read": "Read evaluations, quality scores, alerts, evaluation datasets and regression runs",
    "evaluations:write": "Change evaluation settings, manage evaluation datasets, start regression runs, settle alerts",
    "feedback:read": "Read feedback",
    "feedback:write": "Give feedback on runs and tasks (ratings, labels, comments, corrections)",
    "learning:read": "Read training examples, datasets, their exports and fine-tuning jobs",
    "learning:write": "Build dataset versions, export them and submit fine-tuning jobs",
    "policies:read": "Read policies, their versions and the decisions made under them; validate and dry-run policies",
    "policies:write": "Create, change, delete and roll back policies",
    "decisions:ask": "Ask for a policy decision (what every enforcement point does before acting)",
    "approvals:read": "Read approval requests and their votes",
    "approvals:decide": "Approve or reject approval requests",
    "audit:read": "Read and verify the audit log",
    "suspensions:read": "Read suspensions (the kill switch)",
    "suspensions:write": "Suspend an agent or the whole tenant, and lift a suspension",
    "webhooks:read": "Read outbound webhooks and their deliveries, and inbound webhook endpoints",
    "webhooks:write": "Subscribe, change, rotate and delete webhooks (both directions); redeliver deliveries",
    "schedules:read": "Read scheduled goals and their run history",
    "schedules:write": "Create, change, pause, resume and delete scheduled goals",
    "status:read": "Read the platform's status",
    "console:read": "Use the console's data views",
    TENANT_PURGE: "Erase all of the tenant's data held by a layer (the tenant-deletion saga's service tokens only)",
}


def implied_by_admin(scope: str) -> bool:
    """Whether a tenant's `admin` holds `scope` without naming it (all but the operator's scopes)."""
    return not scope.startswith("platform:")


def unknown(scopes: list[str] | set[str] | frozenset[str]) -> list[str]:
    """The members of `scopes` that are not grantable scopes."""
    return sorted(s for s in scopes if s not in SCOPES)
