"""The handler factory: one Lambda entry point for HTTP (Mangum), EventBridge, schedules, commands, authorizers and
CloudFormation custom resources (a command run at deploy)."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, Union, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from fastapi import FastAPI

from strata.events.envelope import Event, parse_eventbridge

logger = Logger()
# API Gateway and Lambda already measure requests, errors and durations; these count what only we can see.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Strata"))

Consumer = Callable[[Event], Awaitable[None]]
Job = Callable[[], Awaitable[Any]]
Command = Callable[[dict[str, Any]], Awaitable[Any]]
Authorizer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
QueueConsumer = Callable[[Any], Awaitable[None]]  # receives a Powertools SQSRecord
LambdaHandler = Callable[[dict[str, Any], Any], Any]

ALL_EVENTS = "*"  # a consumer key that receives every event type (L01's archive)

# An entry point given as "package.module:function" is imported on its first invocation, not at cold start:
# an HTTP request never pays for the modules only a schedule or a consumer needs.
Target = TypeVar("Target")
Lazy = Union[Target, str]  # noqa: UP007 - a generic alias needs Union here


def resolve(target: Lazy[Target]) -> Target:
    """The callable itself, or the one a "module:attribute" string names (imported once, then cached)."""
    if not isinstance(target, str):
        return target
    found = _resolved.get(target)
    if found is None:
        module, _, attribute = target.partition(":")
        found = _resolved[target] = getattr(importlib.import_module(module), attribute)
    return cast(Target, found)


_resolved: dict[str, Any] = {}
_invocation: Any = None  # the Lambda context of the invocation in progress (one at a time per environment)


def remaining_s() -> float | None:
    """Seconds left before the current invocation's deadline (None outside an invocation, e.g. in a test calling
    a consumer directly): work that must not be cut off hands itself on before it."""
    remaining = getattr(_invocation, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if remaining is not None else None


def invocation_id() -> str:
    """The current invocation's request id (a fresh id outside one): who holds a lease."""
    request_id = getattr(_invocation, "aws_request_id", None)
    return str(request_id) if request_id else f"local-{uuid.uuid4()}"


class NoConsumerError(Exception):
    """The function received an event type it does not subscribe to (a wiring error: retried, then DLQ)."""


_loop: asyncio.AbstractEventLoop | None = None


def environment_loop() -> asyncio.AbstractEventLoop:
    """The one event loop kept for the execution environment, current for its thread so that Mangum and Powertools
    run on it too: uvloop's (asyncpg's and aiohttp's I/O on libuv; the runtime benchmark's time per task fell by a
    third with it), asyncio's own where uvloop is not installed."""
    global _loop
    if _loop is None or _loop.is_closed():
        try:
            import uvloop
        except ImportError:
            _loop = asyncio.new_event_loop()
        else:
            _loop = uvloop.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def run_in_environment_loop(awaitable: Awaitable[Any]) -> Any:
    """Run on the one loop kept for the execution environment (the loop Mangum uses), never asyncio.run()."""
    return environment_loop().run_until_complete(awaitable)


def _queue_consumer(consumers: Mapping[str, Lazy[QueueConsumer]], queue_arn: str) -> Lazy[QueueConsumer]:
    """The consumer of the queue a batch came from: `consumers` is keyed by the name of the environment variable
    holding each queue's ARN (the template sets it), so the code names no account or stage."""
    for variable, consumer in consumers.items():
        if os.environ.get(variable) == queue_arn:
            return consumer
    raise NoConsumerError(f"this function consumes no queue {queue_arn!r}")


def event_kind(event: Mapping[str, Any]) -> str:
    """Classify an invocation payload by its shape."""
    if "detail-type" in event and "source" in event:
        return "eventbridge"
    if "RequestType" in event and "ResponseURL" in event and "StackId" in event:
        return "custom_resource"
    records = event.get("Records")
    if isinstance(records, list) and records and records[0].get("eventSource") == "aws:sqs":
        return "sqs"
    if event.get("type") == "REQUEST" and "routeArn" in event:
        return "authorizer"
    if "schedule" in event and len(event) == 1:
        return "schedule"
    if "command" in event:
        return "command"
    return "http"


def make_handler(
    app: FastAPI,
    *,
    consumers: Mapping[str, Lazy[Consumer]] | None = None,
    schedules: Mapping[str, Lazy[Job]] | None = None,
    commands: Mapping[str, Lazy[Command]] | None = None,
    authorizer: Lazy[Authorizer] | None = None,
    queue_consumers: Mapping[str, Lazy[QueueConsumer]] | None = None,
) -> LambdaHandler:
    """Build the Lambda handler for a layer's app and its event, schedule and command entry points."""
    from mangum import Mangum
    from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

    # problem+json is text: without this Mangum base64-encodes every error body
    http = Mangum(app, lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"])
    consumers, schedules, commands = dict(consumers or {}), dict(schedules or {}), dict(commands or {})

    async def consume(raw: dict[str, Any]) -> dict[str, Any]:
        event = parse_eventbridge(raw)
        logger.set_correlation_id(event.correlation_id)
        targets = [c for c in (consumers.get(event.DETAIL_TYPE), consumers.get(ALL_EVENTS)) if c is not None]
        if not targets:
            raise NoConsumerError(f"no consumer for {event.DETAIL_TYPE}")
        for target in targets:
            await resolve(target)(event)
        return {"consumed": event.DETAIL_TYPE, "event_id": str(event.event_id)}

    def dispatch(kind: str, event: dict[str, Any]) -> Any:
        if kind == "eventbridge":
            return run_in_environment_loop(consume(event))
        if kind == "sqs":
            consumer = _queue_consumer(queue_consumers or {}, str(event["Records"][0].get("eventSourceARN", "")))
            from aws_lambda_powertools.utilities.batch import (
                AsyncBatchProcessor,
                EventType,
                async_process_partial_response,
            )

            # failed records are reported back (ReportBatchItemFailures); the rest of the batch is deleted
            processor = AsyncBatchProcessor(event_type=EventType.SQS)
            return async_process_partial_response(event, resolve(consumer), processor)
        if kind == "authorizer":
            if authorizer is None:
                raise NoConsumerError("this function is not an authorizer")
            answer = run_in_environment_loop(resolve(authorizer)(event))
            if not answer.get("isAuthorized"):
                metrics.add_metric(name="AuthorizationsDenied", unit=MetricUnit.Count, value=1)
            return answer
        if kind == "schedule":
            job = schedules.get(str(event["schedule"]))
            if job is None:
                raise NoConsumerError(f"no scheduled job {event['schedule']!r}")
            return run_in_environment_loop(resolve(job)())
        if kind == "custom_resource":
            return answer_custom_resource(event, commands)
        command = commands.get(str(event["command"]))
        if command is None:
            raise NoConsumerError(f"no command {event['command']!r}")
        return run_in_environment_loop(resolve(command)(dict(event.get("args") or {})))

    def handler(event: dict[str, Any], context: Any) -> Any:
        global _invocation
        kind = event_kind(event)
        _invocation = context
        environment_loop()  # current before Mangum or Powertools asks for the thread's loop
        if kind == "http":
            return http(event, context)
        logger.append_keys(invocation=kind)
        outcome = "Failed"
        try:
            result = dispatch(kind, event)
            outcome = "Failed" if kind == "custom_resource" and result["Status"] == "FAILED" else "Succeeded"
            return result
        finally:
            metrics.add_metric(name=f"{_METRIC_NAMES[kind]}{outcome}", unit=MetricUnit.Count, value=1)
            metrics.flush_metrics()

    return handler


_METRIC_NAMES = {
    "eventbridge": "Events",
    "sqs": "QueueBatches",
    "authorizer": "Authorizations",
    "schedule": "ScheduledJobs",
    "command": "Commands",
    "custom_resource": "DeployCommands",
}

# CloudFormation custom resources (the template's DatabaseMigration runs `migrate` at every deploy that changes the
# layer): the answer goes to the request's pre-signed S3 URL, as AWS's cfnresponse module sends it
CUSTOM_RESOURCE_MARGIN_S = 5.0  # of the invocation's time, kept to send the answer after a command ran out of time
CUSTOM_RESOURCE_REASON_CHARS = 1000  # the whole answer must stay under CloudFormation's 4 KB


def answer_custom_resource(event: Mapping[str, Any], commands: Mapping[str, Lazy[Command]]) -> dict[str, Any]:
    """Run the command a custom resource names (property `Command`, arguments `Args`) on Create and Update, nothing on
    Delete, and send CloudFormation SUCCESS or FAILED. A command's failure is an answer, not an exception: raising
    would have Lambda retry the invocation. Only failing to send the answer raises (a retry sends it again)."""
    request = str(event["RequestType"])
    properties = dict(event.get("ResourceProperties") or {})
    status, reason = "SUCCESS", f"{request}: nothing to do"
    if request in ("Create", "Update"):
        name = str(properties.get("Command", ""))
        command = commands.get(name)
        if command is None:
            status, reason = "FAILED", f"this function has no command {name!r} (commands: {sorted(commands)})"
        else:
            try:
                result = run_in_environment_loop(_within_deadline(resolve(command)(dict(properties.get("Args") or {}))))
                reason = f"{name}: {json.dumps(result, default=str)}"
            except TimeoutError:
                logger.exception("custom resource command ran out of time", extra={"command": name})
                status = "FAILED"
                again = json.dumps({"command": name})
                reason = f"{name} did not finish within the function's timeout: invoke the function with {again}"
            except Exception as exc:  # any failure fails the deployment, with its reason in the stack's events
                logger.exception("custom resource command failed", extra={"command": name})
                status, reason = "FAILED", f"{name} failed: {type(exc).__name__}: {exc}"
    log_stream = getattr(_invocation, "log_stream_name", "")
    if status == "FAILED" and log_stream:
        reason += f" (log stream {log_stream})"
    # the same id on every request: a new one would make CloudFormation replace the resource and delete the old one
    physical_id = event.get("PhysicalResourceId") or f"{event['LogicalResourceId']}-{properties.get('Command', '')}"
    answer = {
        "Status": status,
        "Reason": reason[:CUSTOM_RESOURCE_REASON_CHARS],
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": {},
    }
    _send_custom_resource_answer(str(event["ResponseURL"]), answer)
    logger.info("custom resource answered", extra={"request": request, "status": status, "reason": answer["Reason"]})
    return answer


async def _within_deadline(awaitable: Awaitable[Any]) -> Any:
    """The command, cut off early enough for its answer to be sent (a Lambda timeout would send none)."""
    remaining = remaining_s()
    if remaining is None:
        return await awaitable
    return await asyncio.wait_for(awaitable, timeout=max(remaining - CUSTOM_RESOURCE_MARGIN_S, 1.0))


def _send_custom_resource_answer(url: str, answer: Mapping[str, Any]) -> None:
    """PUT the answer to CloudFormation's pre-signed URL (no content type: the URL's signature names none)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an HTTP(S) response URL: {url[:80]!r}")
    body = json.dumps(answer).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
