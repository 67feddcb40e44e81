"""The saga engine against a real Postgres: reverse-order compensation, per-step timeouts and retries, every transition
persisted, a runner that dies resumed from where it stopped, the point of no return, and the operator's retry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from strata import db
from strata.config import get_settings
from strata.migrations import apply_migrations
from strata_integration.sagas import engine, store
from strata_integration.sagas.engine import SagaContext, SagaDefinition, Step, StepFailedError


class CrashError(BaseException):
    """The runner dying mid-step (a killed worker): nothing in the engine catches it."""


@pytest.fixture
async def saga_db(pg_server: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.replace("/postgres?", f"/{name}?")
    conn = await asyncpg.connect(url)
    await apply_migrations(conn)
    await conn.close()
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    await db.reset_pool()
    monkeypatch.setattr(engine, "saga_settings", lambda: engine.SagaSettings(saga_lease_s=0.3, saga_retry_base_s=0.01))
    try:
        yield url
    finally:
        await db.reset_pool()
        get_settings.cache_clear()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


class Recorder:
    """Steps that log what they do, fail or crash on cue."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.fail: dict[str, StepFailedError] = {}
        self.crash_once: set[str] = set()
        self.slow_once: set[str] = set()
        self.undo_fails: set[str] = set()

    def step(self, name: str, **options: Any) -> Step:
        async def act(context: SagaContext) -> dict[str, Any]:
            self.log.append(name)
            if name in self.crash_once:
                self.crash_once.discard(name)
                raise CrashError
            if name in self.slow_once:
                self.slow_once.discard(name)
                await asyncio.sleep(5)
            if name in self.fail:
                raise self.fail[name]
            return {"did": name, "saw": sorted(context.outputs)}

        async def undo(context: SagaContext) -> None:
            self.log.append(f"undo {name}")
            if name in self.undo_fails:
                raise StepFailedError(f"cannot undo {name}", retryable=False)

        return Step(name, act, undo, **{"timeout_s": 2.0, "retries": 2, **options})


async def _start(definition: SagaDefinition) -> tuple[uuid.UUID, dict[str, Any]]:
    tenant = uuid.uuid4()
    saga, _ = await engine.start(definition, tenant, {"n": 1}, requested_by="test", correlation_id="c-1")
    return tenant, saga


def _statuses(saga: dict[str, Any]) -> list[str]:
    return [step["status"] for step in saga["steps"]]


async def test_a_failing_third_step_compensates_the_first_two_in_reverse_order(saga_db: str) -> None:
    recorder = Recorder()
    recorder.fail["c"] = StepFailedError("refused: 422", retryable=False)
    definition = SagaDefinition(
        f"k-{uuid.uuid4().hex[:6]}", (recorder.step("a"), recorder.step("b"), recorder.step("c"))
    )
    engine.register(definition)

    _, saga = await _start(definition)

    assert recorder.log == ["a", "b", "c", "undo b", "undo a"]
    assert saga["status"] == "compensated"
    assert _statuses(saga) == ["compensated", "compensated", "failed"]
    assert saga["steps"][2]["attempts"] == 1  # a 4xx is final: not retried
    assert "refused: 422" in saga["error"]
    # every change was persisted, in order: the saga's and each step's
    moves = [(t["step_index"], t["from_status"], t["to_status"]) for t in saga["transitions"]]
    assert moves[0] == (None, None, "running")
    assert (2, "running", "failed") in moves
    assert moves.index((1, "compensating", "compensated")) < moves.index((0, "compensating", "compensated"))
    assert moves[-1] == (None, "compensating", "compensated")
    # the outputs of the steps before were kept for the compensations
    assert saga["steps"][1]["output"] == {"did": "b", "saw": ["a"]}


async def test_a_step_past_its_timeout_is_retried_and_a_flaky_one_gets_its_retries(saga_db: str) -> None:
    recorder = Recorder()
    recorder.slow_once.add("a")
    definition = SagaDefinition(f"k-{uuid.uuid4().hex[:6]}", (recorder.step("a", timeout_s=0.2), recorder.step("b")))
    engine.register(definition)

    _, saga = await _start(definition)

    assert saga["status"] == "completed"
    assert saga["steps"][0]["attempts"] == 2
    details = [t["detail"] for t in saga["transitions"] if t["step_index"] == 0]
    assert "attempt 2" in details

    # retryable failures beyond the step's retries fail it, and the saga is undone
    recorder = Recorder()
    recorder.fail["b"] = StepFailedError("503 from the layer", retryable=True)
    definition = SagaDefinition(f"k-{uuid.uuid4().hex[:6]}", (recorder.step("a"), recorder.step("b", retries=2)))
    engine.register(definition)
    _, saga = await _start(definition)
    assert saga["status"] == "compensated"
    assert saga["steps"][1]["attempts"] == 3
    assert recorder.log == ["a", "b", "b", "b", "undo a"]


async def test_a_runner_that_dies_mid_step_is_resumed_from_its_last_transition(saga_db: str) -> None:
    recorder = Recorder()
    recorder.crash_once.add("b")
    definition = SagaDefinition(
        f"k-{uuid.uuid4().hex[:6]}", (recorder.step("a"), recorder.step("b"), recorder.step("c"))
    )
    engine.register(definition)
    tenant = uuid.uuid4()

    # GIVEN a runner that dies while step b runs
    with pytest.raises(CrashError):
        await engine.start(definition, tenant, {}, requested_by="test", correlation_id="c-2")
    (saga_id,) = [s["saga_id"] for s in (await store.list_page(tenant, _page(), None, None))[0]]
    stuck = await store.get(tenant, saga_id)
    assert stuck["status"] == "running"
    assert _statuses(stuck) == ["succeeded", "running", "pending"]
    assert await engine.resume_due() == {"resumed": 0}  # its lease has not run out: nobody else takes it yet

    # WHEN its lease runs out and the schedule looks
    await asyncio.sleep(0.4)
    assert await engine.resume_due() == {"resumed": 1}

    # THEN it goes on from step b (a is not done again) and completes
    saga = await store.get(tenant, saga_id)
    assert saga["status"] == "completed"
    assert recorder.log == ["a", "b", "b", "c"]
    assert [s["attempts"] for s in saga["steps"]] == [1, 2, 1]
    assert saga["steps"][2]["output"] == {"did": "c", "saw": ["a", "b"]}


async def test_past_the_point_of_no_return_a_failure_stops_for_the_operator_who_retries(saga_db: str) -> None:
    recorder = Recorder()
    recorder.fail["c"] = StepFailedError("not now", retryable=False)
    definition = SagaDefinition(
        f"k-{uuid.uuid4().hex[:6]}", (recorder.step("a"), recorder.step("b", pivot=True), recorder.step("c"))
    )
    engine.register(definition)

    tenant, saga = await _start(definition)
    assert saga["status"] == "failed"
    assert _statuses(saga) == ["succeeded", "succeeded", "failed"]
    assert "undo a" not in recorder.log

    del recorder.fail["c"]
    retried = await engine.retry(tenant, saga["saga_id"], "operator")
    assert retried["status"] == "completed"
    assert recorder.log == ["a", "b", "c", "c"]


async def test_a_compensation_that_fails_leaves_the_saga_failed_until_retried(saga_db: str) -> None:
    recorder = Recorder()
    recorder.fail["b"] = StepFailedError("no", retryable=False)
    recorder.undo_fails.add("a")
    definition = SagaDefinition(f"k-{uuid.uuid4().hex[:6]}", (recorder.step("a"), recorder.step("b")))
    engine.register(definition)

    tenant, saga = await _start(definition)
    assert saga["status"] == "failed"
    assert _statuses(saga) == ["compensation_failed", "failed"]

    recorder.undo_fails.clear()
    retried = await engine.retry(tenant, saga["saga_id"], "operator")
    assert retried["status"] == "compensated"
    assert _statuses(retried) == ["compensated", "failed"]
    assert recorder.log == ["a", "b", "undo a", "undo a"]
    with pytest.raises(Exception, match="only a failed saga"):
        await engine.retry(tenant, saga["saga_id"], "operator")


def _page() -> Any:
    from strata.pagination import PageRequest

    return PageRequest(limit=10, cursor=None)
