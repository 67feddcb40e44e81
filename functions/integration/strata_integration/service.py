"""L11's logic: the status of every layer, measured over the real API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from strata import peers
from strata.errors import DependencyUnavailableError
from strata.layers import LAYERS


async def layer_status(layer: str, correlation_id: str) -> dict[str, Any]:
    """One layer's readiness as its own `/health/<layer>/ready` reports it, with the round-trip time."""
    started = time.perf_counter()
    try:
        response = await peers.call("GET", f"/health/{layer}/ready", correlation_id=correlation_id)
    except DependencyUnavailableError as exc:
        return {
            "layer": layer,
            "number": LAYERS[layer],
            "reachable": False,
            "status": "unreachable",
            "error": exc.detail,
        }
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    return {
        "layer": layer,
        "number": LAYERS[layer],
        "reachable": True,
        "status": body.get("status", "error"),
        "http_status": response.status_code,
        "version": body.get("version"),
        "latency_ms": latency_ms,
        "dependencies": body.get("dependencies", {}),
    }


async def platform_status(correlation_id: str) -> dict[str, Any]:
    """Every layer, checked concurrently."""
    layers = await asyncio.gather(*(layer_status(name, correlation_id) for name in LAYERS))
    healthy = all(item["status"] == "ok" for item in layers)
    return {"status": "ok" if healthy else "degraded", "layers": layers}
