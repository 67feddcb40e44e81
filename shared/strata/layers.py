"""The eleven layers: the short name used in routes and sources, and the number users know them by."""

LAYERS: dict[str, str] = {
    "data": "L01",
    "runtime": "L02",
    "tool_execution": "L03",
    "model_gateway": "L04",
    "planning": "L05",
    "evaluation": "L06",
    "learning": "L07",
    "supervision": "L08",
    "api_gateway": "L09",
    "human_interface": "L10",
    "integration": "L11",
}

# The first segment of a /v1 path -> the layer whose function serves it (a test checks this against template.yaml's
# routes). `/health/<layer>/...` and `/v1/tenant-data/<layer>` name their layer in the path itself.
RESOURCES: dict[str, str] = {
    **dict.fromkeys(
        ("agents", "configurations", "dead-letters", "documents", "events", "retention", "sessions"), "data"
    ),
    **dict.fromkeys(("run-summary", "runs"), "runtime"),
    **dict.fromkeys(("mcp-servers", "tool-calls", "tools"), "tool_execution"),
    **dict.fromkeys(("budgets", "chat", "models"), "model_gateway"),
    **dict.fromkeys(("goals", "plan-templates", "plans"), "planning"),
    **dict.fromkeys(
        ("alerts", "eval-datasets", "eval-runs", "evaluation-settings", "evaluations", "quality"), "evaluation"
    ),
    **dict.fromkeys(("datasets", "feedback", "fine-tunes", "training-examples"), "learning"),
    **dict.fromkeys(("approvals", "audit", "decisions", "policies", "suspensions"), "supervision"),
    **dict.fromkeys(("api-keys", "docs", "openapi.json", "requests", "tenant", "tenants", "usage"), "api_gateway"),
    "console": "human_interface",
    **dict.fromkeys(
        ("hooks", "inbound-webhooks", "sagas", "schedules", "status", "webhook-deliveries", "webhooks"),
        "integration",
    ),
}


def layer_of_path(path: str) -> str | None:
    """The layer serving `path` (None for a path no layer serves)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "health":
        return parts[1] if parts[1] in LAYERS else None
    if len(parts) >= 2 and parts[0] == "v1":
        if parts[1] == "tenant-data":
            layer = parts[2].replace("-", "_") if len(parts) > 2 else ""
            return layer if layer in LAYERS else None
        return RESOURCES.get(parts[1])
    return None
