"""The EventBridge bus: a readiness probe (publishing goes through the outbox)."""

from __future__ import annotations

import asyncio

from strata import aws
from strata.config import get_settings


async def ping() -> None:
    """Readiness probe: the configured bus exists and answers."""
    name = get_settings().event_bus_name
    await asyncio.to_thread(lambda: aws.client("events").describe_event_bus(Name=name))
