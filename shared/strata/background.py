"""Work taken off a request's path: it runs as a task of the execution environment's loop, which keeps running
between invocations while the environment is warm. Use it only for work that may be lost or that something
else redoes (an outbox sweeper, best-effort statistics): a frozen environment may never finish it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_tasks: set[asyncio.Task[Any]] = set()


def spawn(work: Coroutine[Any, Any, Any]) -> None:
    """Start `work` now and keep a reference until it is done (the loop holds only weak ones)."""
    task = asyncio.create_task(work)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain() -> None:
    """Wait for every pending task (tests, and a clean shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)
