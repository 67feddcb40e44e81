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
