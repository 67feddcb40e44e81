"""Outbound webhooks' entry points beyond HTTP: the events queue (every subscribable event, in batches), the delivery
queue (one attempt per message), and the sweeper's schedule."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from strata.errors import BadRequestError
from strata.events.envelope import parse_eventbridge
from strata_integration.webhooks import service

logger = Logger(child=True)


async def queue_event(record: Any) -> None:
    """One message of the webhook events queue (a Powertools SQSRecord: the event as EventBridge delivered it),
    fanned out into deliveries. An event that cannot be parsed can never be delivered: it is logged and dropped
    (L01's archive keeps it as a dead letter); any other failure is retried by the queue, then dead-lettered."""
    try:
        event = parse_eventbridge(json.loads(record.body))
    except (ValueError, BadRequestError) as exc:  # JSON, pydantic's ValidationError, UnknownEventError
        logger.warning("an event cannot be delivered to webhooks", extra={"reason": str(exc)[:500]})
        return
    logger.set_correlation_id(event.correlation_id)
    await service.fan_out(event)


async def deliver(record: Any) -> None:
    """One message of the delivery queue: the attempt it names, if it is still due."""
    try:
        message = service.Queued.parse(record.body)
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("a delivery message this code did not send", extra={"reason": str(exc)[:500]})
        return
    await service.attempt_queued(message)


async def sweep_deliveries() -> dict[str, int]:
    """The sweeper's schedule."""
    return await service.sweep()
