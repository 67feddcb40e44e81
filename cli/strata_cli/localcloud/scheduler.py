"""EventBridge Scheduler for the local cloud: the schedules that functions create through the emulator's Scheduler
API (moto or LocalStack store them, neither fires them) invoke their Lambda targets on time.

What it does, as Scheduler does (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html):
- reads every group's schedules from the emulator's API about once a second (a schedule's details again only when
  its LastModificationDate changes), and sleeps until the next time any of them is due in between;
- fires `cron()` at the start of each matching minute in the schedule's time zone (a time the clocks skip is skipped,
  a time they repeat fires once), `rate()` at StartDate + n * period (from its creation without a StartDate), and
  `at()` once at its wall-clock time; never before StartDate nor after EndDate (both ignored by `at()`); a DISABLED
  schedule not at all, and one resumed or changed from its next time on (missed times are not made up);
- invokes the target (a function of the template, found by the name in its ARN) asynchronously, as Scheduler invokes
  Lambda, with the target's Input after substituting `<aws.scheduler.scheduled-time>` (UTC, whole seconds),
  `<aws.scheduler.execution-id>`, `<aws.scheduler.attempt-number>` and `<aws.scheduler.schedule-arn>`; a failing
  invocation is retried twice, one and then two minutes later, as Lambda retries asynchronous invocations (scaled by
  the local cloud's retry_base_delay_s);
- honours ActionAfterCompletion DELETE: the schedule is deleted once it has fired its last time.

What it does not: flexible time windows (it fires at the time, within Scheduler's one-minute precision), targets
other than Lambda functions, Scheduler's own retry policy and dead-letter queue (which apply when invoking fails, not
when the function does), KMS keys, and the role (never assumed: the emulator does not check it). A rate or at()
schedule written less than two seconds after its StartDate or its time still fires it (a client computes the moment,
then the write takes a while to land; a cron's times come from the minutes after the write); a time more than a
minute past when the emulator gets to it (the machine was suspended, say) is skipped, not fired late.

The expressions are read by `strata.schedule_expressions`, the module L11 validates schedules with, loaded from the
template's shared layer (the CLI does not ship the `strata` package).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from strata_cli.localcloud.lambdas import FunctionPool, InvocationError

log = logging.getLogger("strata.localcloud.scheduler")
POLL_S = 1.0
CHANGE_TOLERANCE = timedelta(seconds=2)  # a rate's start or an at() time this close before its write still fires
MAX_LATENESS = timedelta(seconds=60)  # Scheduler's precision: an older time is skipped
LAMBDA_RETRY_DELAYS_S = (60.0, 120.0)  # Lambda's two retries of a failed asynchronous invocation
EXPRESSIONS_FILE = Path("strata") / "schedule_expressions.py"


def load_expressions(layers: list[Path]) -> ModuleType:
    """`strata.schedule_expressions`, loaded from the first layer that has it (by path: it imports only the standard
    library)."""
    for layer in layers:
        path = layer / EXPRESSIONS_FILE
        if path.is_file():
            name = "strata_localcloud_schedule_expressions"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses look their module up while the file runs
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(f"no layer of the template has {EXPRESSIONS_FILE}")


@dataclass
class Tracked:
    """One schedule as the emulator last read it, and where it is in its times."""

    arn: str
    version: tuple[Any, ...]  # (CreationDate, LastModificationDate, State): re-read when it changes
    detail: dict[str, Any]
    times: Any  # the iterator of its times (strata.schedule_expressions.fire_times), or None when it cannot fire
    due: datetime | None
    last_fired: datetime | None = None


class SchedulerEmulator:
    """Polls the emulator's Scheduler API and invokes each schedule's target on time (see the module's docstring)."""

    def __init__(
        self,
        clients: Any,
        pools: dict[str, FunctionPool],
        function_names: dict[str, str],
        expressions: ModuleType,
        retry_base_delay_s: float = 1.0,
        poll_s: float = POLL_S,
    ) -> None:
        self.client = clients("scheduler")
        self.pools = pools
        self.function_names = function_names  # a function's name (or logical id) -> its pool's key
        self.expressions: Any = expressions  # strata.schedule_expressions
        self.retry_delays_s = tuple(d * retry_base_delay_s for d in LAMBDA_RETRY_DELAYS_S)
        self.poll_s = poll_s
        self.tracked: dict[str, Tracked] = {}
        self.fired = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False

    def start(self) -> None:
        self._running = True
        self._spawn(self._run())

    async def stop(self) -> None:
        self._running = False
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        while self._running:
            try:
                await asyncio.to_thread(self._refresh)
            except Exception as exc:  # the emulator restarting must not end the scheduler
                log.warning("reading schedules failed: %s", exc)
            now = datetime.now(UTC)
            for schedule in list(self.tracked.values()):
                self._fire_due(schedule, now)
            upcoming = [s.due for s in self.tracked.values() if s.due is not None]
            wait = self.poll_s
            if upcoming:
                wait = min(wait, (min(upcoming) - datetime.now(UTC)).total_seconds())
            await asyncio.sleep(max(wait, 0.0))

    def _refresh(self) -> None:
        """Read every schedule's summary; fetch the details of new and changed ones; forget deleted ones."""
        seen: set[str] = set()
        for page in self.client.get_paginator("list_schedules").paginate():
            for summary in page.get("Schedules", []):
                arn = summary["Arn"]
                seen.add(arn)
                version = (summary.get("CreationDate"), summary.get("LastModificationDate"), summary.get("State"))
                known = self.tracked.get(arn)
                if known is not None and known.version == version:
                    continue
                try:
                    detail = self.client.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName"))
                except self.client.exceptions.ResourceNotFoundException:
                    continue
                self.tracked[arn] = self._track(arn, version, detail, known)
        for arn in set(self.tracked) - seen:
            del self.tracked[arn]

    def _track(self, arn: str, version: tuple[Any, ...], detail: dict[str, Any], known: Tracked | None) -> Tracked:
        """The schedule's times from its (new) definition on: after the later of its last firing and its change."""
        expressions = self.expressions
        changed = detail.get("LastModificationDate") or detail.get("CreationDate") or datetime.now(UTC)
        tracked = Tracked(arn, version, detail, None, None, known.last_fired if known else None)
        if detail.get("State", "ENABLED") != "ENABLED":
            return tracked
        try:
            expression = expressions.parse(detail["ScheduleExpression"])
            # a cron's minutes do not depend on when it was written; a rate's StartDate and an at() time are written
            # as a moment, which may have passed by the time the write lands
            since = changed if isinstance(expression, expressions.CronExpression) else changed - CHANGE_TOLERANCE
            if tracked.last_fired is not None:
                since = max(since, tracked.last_fired)
            tracked.times = expressions.fire_times(
                expression,
                expressions.zone(detail.get("ScheduleExpressionTimezone") or "UTC"),
                after=since,
                start=detail.get("StartDate"),
                end=detail.get("EndDate"),
                anchor=detail.get("CreationDate"),
            )
            tracked.due = next(tracked.times, None)
        except (expressions.ScheduleExpressionError, ValueError) as exc:
            log.warning("schedule %s cannot fire: %s", arn, exc)
            tracked.times = None
            return tracked
        if tracked.due is None:
            self._complete(tracked)
        return tracked

    def _fire_due(self, schedule: Tracked, now: datetime) -> None:
        while schedule.due is not None and schedule.due <= now:
            due = schedule.due
            if now - due <= MAX_LATENESS:
                self._spawn(self._invoke(schedule, due))
            else:
                log.warning("schedule %s: %s is past by more than a minute, skipped", schedule.arn, due.isoformat())
            schedule.last_fired = due
            schedule.due = next(schedule.times, None)
            if schedule.due is None:
                self._spawn(asyncio.to_thread(self._complete, schedule))

    def _complete(self, schedule: Tracked) -> None:
        """ActionAfterCompletion DELETE: the schedule has no time left, so it goes (unless it changed meanwhile)."""
        detail = schedule.detail
        if detail.get("ActionAfterCompletion") != "DELETE":
            return
        name, group = detail["Name"], detail.get("GroupName")
        try:
            current = self.client.get_schedule(Name=name, GroupName=group)
            if current.get("LastModificationDate") == detail.get("LastModificationDate"):
                self.client.delete_schedule(Name=name, GroupName=group)
        except self.client.exceptions.ResourceNotFoundException:
            pass
        except Exception as exc:  # the next poll finds it again and completes it then
            log.warning("deleting completed schedule %s failed: %s", schedule.arn, exc)

    async def _invoke(self, schedule: Tracked, due: datetime) -> None:
        target = schedule.detail.get("Target") or {}
        arn = str(target.get("Arn", "")).split(":")
        pool = self.pools.get(self.function_names.get(arn[6] if len(arn) > 6 else "", ""))
        if pool is None:
            log.warning("schedule %s: its target %s is no function of the template", schedule.arn, target.get("Arn"))
            self.failed += 1
            return
        payload = (
            str(target.get("Input") or "{}")
            .replace("<aws.scheduler.scheduled-time>", self.expressions.format_scheduled_time(due))
            .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
            .replace("<aws.scheduler.attempt-number>", "1")
            .replace("<aws.scheduler.schedule-arn>", schedule.arn)
        )
        body = payload.encode()  # Scheduler sends the Input as it is
        self.fired += 1
        for attempt in range(1 + len(self.retry_delays_s)):
            try:
                await pool.invoke(body)
                return
            except InvocationError as exc:
                log.info("schedule %s: invocation %d failed: %s", schedule.arn, attempt + 1, exc)
                if attempt < len(self.retry_delays_s):
                    await asyncio.sleep(self.retry_delays_s[attempt])
        self.failed += 1
        log.warning("schedule %s: the invocation for %s failed three times", schedule.arn, due.isoformat())


def function_names(template: Any, resolve: Any) -> dict[str, str]:
    """Each function's name as an ARN would carry it (its FunctionName, or its logical id) -> its logical id."""
    names: dict[str, str] = {}
    for logical in template.functions:
        names[logical] = logical
        explicit = template.resources[logical].get("Properties", {}).get("FunctionName")
        if explicit is not None:
            names[resolve(explicit)] = logical
    return names
