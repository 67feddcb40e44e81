"""Work taken off a request's path: it runs as a task of the execution environment's loop, which keeps running
between invocations while the environment is warm. Use it only for work that may be lost or that something
else redoes (an outbox sweeper, best-effort statistics): a frozen environment may never finish it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)
_tasks: set[asyncio.Task[Any]] = set()


def spawn(work: Coroutine[Any, Any, Any]) -> None:
    """Start `work` now and keep a reference until it is done (the loop holds only weak ones); a failure is
    logged, since nobody awaits it."""
    task = asyncio.create_task(work)
    _tasks.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("background work failed", exc_info=task.exception())


async def drain() -> None:
    """Wait for every pending task (tests, and a clean shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)
