"""Events for the local cloud: the template's rules become emulator rules with queue targets, drained into the
functions with the rule's retry policy and dead-letter queue, as EventBridge does; schedules fire on time."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strata_cli.localcloud.lambdas import FunctionPool, InvocationError
from strata_cli.localcloud.template import QueueSource, Rule, Schedule

log = logging.getLogger("strata.localcloud.events")
REGION, ACCOUNT = "us-east-1", "000000000000"
# SQS long polling: a receive returns as soon as a message arrives, else after this long. The longest SQS allows,
# so idle queues cost the emulator (one process, shared by everything) almost nothing.
LONG_POLL_S = 20


@dataclass
class RuleTarget:
    rule: Rule
    queue_url: str
    rule_arn: str
    dead_letter_url: str | None


@dataclass
class QueueTarget:
    source: QueueSource
    queue_url: str
    queue_arn: str


class EventRouter:
    """Drains each rule's queue into its function: retried with exponential backoff, then dead-lettered."""

    def __init__(
        self,
        clients: Any,
        pools: dict[str, FunctionPool],
        targets: list[RuleTarget],
        schedules: list[Schedule],
        queues: list[QueueTarget],
        retry_base_delay_s: float = 1.0,
        schedule_period_s: float | None = None,
    ) -> None:
        self.sqs = clients("sqs")
        self.pools = pools
        self.targets = targets
        self.schedules = schedules
        self.queues = queues
        self.retry_base_delay_s = retry_base_delay_s
        self.schedule_period_s = schedule_period_s
        self.executor = ThreadPoolExecutor(max_workers=(len(targets) + len(queues)) * 2 + 4, thread_name_prefix="drain")
        self.delivered = 0
        self.dead_lettered = 0
        # fault injection for tests: deliver every event this many times at once (EventBridge promises at least
        # once, so consumers must make a duplicate change nothing)
        self.copies = 1
        # SQS event sources (by name, e.g. "DataFunction-DeadLetters") taken out of service, as
        # `aws lambda update-event-source-mapping --no-enabled` does: their messages stay on the queue
        self.disabled_sources: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False

    def start(self) -> None:
        self._running = True
        for target in self.targets:
            self._spawn(self._drain(target))
        for schedule in self.schedules:
            self._spawn(self._fire(schedule))
        for queue in self.queues:
            self._spawn(self._poll(queue))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, fn: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(**kwargs))

    async def _drain(self, target: RuleTarget) -> None:
        # no more messages in flight than the function can run at once: the rest wait in the queue, not here
        slots = asyncio.Semaphore(self.pools[target.rule.function].max_concurrency)
        while self._running:
            await slots.acquire()
            taken = 1
            while taken < 10 and not slots.locked():
                await slots.acquire()
                taken += 1
            messages: list[dict[str, Any]] = []
            try:
                response = await self._call(
                    self.sqs.receive_message,
                    QueueUrl=target.queue_url,
                    MaxNumberOfMessages=taken,
                    WaitTimeSeconds=LONG_POLL_S,
                )
                messages = response.get("Messages", [])
            except Exception as exc:  # the emulator restarting must not end the drain
                log.warning("receive from %s failed: %s", target.rule.name, exc)
                await asyncio.sleep(1)
            for message in messages:
                self._spawn(self._deliver(target, message, slots))
            for _ in range(taken - len(messages)):
                slots.release()

    async def _deliver(self, target: RuleTarget, message: dict[str, Any], slots: asyncio.Semaphore) -> None:
        try:
            await self._deliver_with_retries(target, message)
        finally:
            slots.release()

    async def _deliver_with_retries(self, target: RuleTarget, message: dict[str, Any]) -> None:
        """EventBridge's target retry policy: attempts with exponential backoff until the retries or the event's
        maximum age run out, then the DLQ with the reason; the message leaves the rule's queue either way."""
        event = json.loads(message["Body"])
        pool = self.pools[target.rule.function]
        attempts = 1 + target.rule.max_retries
        made, error, exhausted = 0, None, "MaximumRetryAttempts"
        for attempt in range(attempts):
            if _age_s(event) > target.rule.max_event_age_s:
                exhausted = "MaximumEventAgeInSeconds"
                error = error or InvocationError("EventTooOld", "the event outlived the rule's maximum age")
                break
            made += 1
            try:
                if self.copies > 1:
                    await asyncio.gather(*(pool.invoke(event) for _ in range(self.copies)))
                else:
                    await pool.invoke(event)
                error = None
                self.delivered += 1
                break
            except InvocationError as exc:
                error = exc
                log.info("%s: attempt %d of %d failed: %s", target.rule.name, attempt + 1, attempts, exc)
                if attempt + 1 < attempts:
                    await asyncio.sleep(min(self.retry_base_delay_s * 2**attempt, 60))
        if error is not None:
            await self._dead_letter(target, message["Body"], error, max(made - 1, 0), exhausted)
        await self._call(self.sqs.delete_message, QueueUrl=target.queue_url, ReceiptHandle=message["ReceiptHandle"])

    async def _dead_letter(
        self, target: RuleTarget, body: str, error: InvocationError, retries: int, exhausted: str
    ) -> None:
        self.dead_lettered += 1
        if target.dead_letter_url is None:
            log.error("%s: event dropped after %d retries (no DLQ): %s", target.rule.name, retries, error)
            return
        attributes = {
            "RULE_ARN": target.rule_arn,
            "TARGET_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{target.rule.function}",
            "ERROR_CODE": error.error_type[:256],
            "ERROR_MESSAGE": error.message[:256] or error.error_type,
            "EXHAUSTED_RETRY_CONDITION": exhausted,
            "RETRY_ATTEMPTS": str(retries),
        }
        await self._call(
            self.sqs.send_message,
            QueueUrl=target.dead_letter_url,
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )

    async def _poll(self, target: QueueTarget) -> None:
        """Lambda's SQS event source: batches in, `batchItemFailures` stay on the queue, the rest are deleted."""
        pool = self.pools[target.source.function]
        while self._running:
            if target.source.name in self.disabled_sources:
                await asyncio.sleep(0.1)
                continue
            try:
                response = await self._call(
                    self.sqs.receive_message,
                    QueueUrl=target.queue_url,
                    WaitTimeSeconds=LONG_POLL_S,
                    MaxNumberOfMessages=min(target.source.batch_size, 10),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception as exc:  # the emulator restarting must not end the poller
                log.warning("receive from %s failed: %s", target.source.name, exc)
                await asyncio.sleep(1)
                continue
            messages = response.get("Messages", [])
            if messages and target.source.name in self.disabled_sources:  # disabled while this receive waited
                entries = [
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for n, m in enumerate(messages)
                ]
                await self._call(self.sqs.change_message_visibility_batch, QueueUrl=target.queue_url, Entries=entries)
                continue
            if not messages:
                continue
            try:
                result = json.loads(
                    await pool.invoke({"Records": [_sqs_record(m, target.queue_arn) for m in messages]})
                )
            except (InvocationError, ValueError) as exc:
                log.info("%s: batch failed, left on the queue: %s", target.source.name, exc)
                continue
            failed = {item.get("itemIdentifier") for item in (result or {}).get("batchItemFailures", [])}
            done = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                for n, m in enumerate(messages)
                if m["MessageId"] not in failed
            ]
            if done:  # one request for the batch, as Lambda's event source mapping deletes
                await self._call(self.sqs.delete_message_batch, QueueUrl=target.queue_url, Entries=done)

    async def _fire(self, schedule: Schedule) -> None:
        period = self.schedule_period_s or schedule.period_s
        pool = self.pools[schedule.function]
        while self._running:
            await asyncio.sleep(period)
            payload = (
                json.loads(schedule.input)
                if schedule.input
                else {
                    "version": "0",
                    "id": str(time.time_ns()),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": ACCOUNT,
                    "time": datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": REGION,
                    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{schedule.name}"],
                    "detail": {},
                }
            )
            try:
                await pool.invoke(payload)
            except InvocationError as exc:
                log.warning("schedule %s failed: %s", schedule.name, exc)

    async def stop(self) -> None:
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.executor.shutdown(wait=False, cancel_futures=True)


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the event Lambda's SQS event source sends."""
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def _age_s(event: dict[str, Any]) -> float:
    try:
        return time.time() - datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return 0.0
