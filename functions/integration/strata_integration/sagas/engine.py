"""The saga runner: steps in order, each with a timeout and retries; on a failure, the completed steps compensated in
reverse order. Every transition is persisted before the next thing happens, so a runner that dies (a Lambda timeout,
a killed worker) leaves a saga the next runner resumes where it stopped: the schedule picks up any unfinished saga
whose lease has run out.

A step's action and compensation may therefore run more than once (after a crash between doing and recording) and
must be idempotent: the definitions send an `Idempotency-Key` derived from the saga and the step, and treat "already
gone" as done. A step marked `pivot` is the point of no return (the tenant-deletion saga's first erasure): once it
has succeeded, a later failure stops the saga as `failed` for the operator to retry, never compensates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from aws_lambda_powertools import Logger

from strata.config import Settings
from strata.errors import ConflictError, DependencyUnavailableError, NotFoundError
from strata.handler import invocation_id, remaining_s
from strata_integration.sagas import store

logger = Logger(child=True)


class SagaSettings(Settings):
    saga_lease_s: float = 60.0  # a runner's hold on a saga, renewed at every transition
    saga_retry_base_s: float = 0.5  # a step's retries wait base, 2·base, 4·base … (capped at 30 s)
    saga_inline_budget_s: float = 20.0  # how long the starting request drives its saga before answering 202


def saga_settings() -> SagaSettings:
    return SagaSettings()


class StepFailedError(Exception):
    """A step's action or compensation failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class SagaContext:
    """What a step sees: the saga, its input, the outputs of the steps before it, and (in memory only, never
    persisted) secrets a step produced for the caller who is waiting."""

    tenant_id: UUID
    saga_id: UUID
    kind: str
    subject_tenant_id: UUID | None
    input: dict[str, Any]
    outputs: dict[str, dict[str, Any]]
    correlation_id: str
    secrets: dict[str, Any] = field(default_factory=dict)

    def output(self, step: str) -> dict[str, Any]:
        return self.outputs.get(step, {})

    def idempotency_key(self, step: str, suffix: str = "") -> str:
        return f"saga:{self.saga_id}:{step}{':' + suffix if suffix else ''}"


Action = Callable[[SagaContext], Awaitable[dict[str, Any] | None]]
Compensation = Callable[[SagaContext], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    name: str
    action: Action
    compensate: Compensation | None = None
    timeout_s: float = 30.0
    retries: int = 3
    pivot: bool = False


@dataclass(frozen=True)
class SagaDefinition:
    kind: str
    steps: tuple[Step, ...]
    # the saga's subject tenant, known from its input (deletion) or from a step's output (provisioning)
    subject: Callable[[dict[str, Any], dict[str, dict[str, Any]]], UUID | None] = lambda _input, _outputs: None


DEFINITIONS: dict[str, SagaDefinition] = {}


def register(definition: SagaDefinition) -> SagaDefinition:
    DEFINITIONS[definition.kind] = definition
    return definition


def _owner() -> str:
    return f"{invocation_id()}:{uuid4().hex[:8]}"


async def start(
    definition: SagaDefinition,
    tenant_id: UUID,
    input_: dict[str, Any],
    *,
    requested_by: str,
    correlation_id: str,
    subject_tenant_id: UUID | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Record a new saga and drive it for up to the inline budget; returns the saga and any secrets its steps made
    for this caller (only the caller that started it ever sees them)."""
    settings = saga_settings()
    saga_id, owner = uuid4(), _owner()
    await store.create(
        tenant_id,
        saga_id,
        definition.kind,
        subject_tenant_id,
        [step.name for step in definition.steps],
        input_,
        requested_by,
        correlation_id,
        owner,
        settings.saga_lease_s,
    )
    secrets = await drive(tenant_id, saga_id, owner=owner, budget_s=settings.saga_inline_budget_s)
    return await store.get(tenant_id, saga_id), secrets


async def retry(tenant_id: UUID, saga_id: UUID, requested_by: str) -> dict[str, Any]:
    """The operator takes a failed saga up again where it stopped (forward, or its compensation)."""
    saga = await store.get(tenant_id, saga_id)
    if saga["status"] != "failed":
        raise ConflictError(f"saga {saga_id} is {saga['status']}: only a failed saga can be retried")
    compensating = any(s["status"] in ("compensation_failed", "compensating", "compensated") for s in saga["steps"])
    settings, owner = saga_settings(), _owner()
    await store.reopen(
        tenant_id,
        saga_id,
        "compensating" if compensating else "running",
        owner,
        settings.saga_lease_s,
        f"retried by {requested_by}",
    )
    await drive(tenant_id, saga_id, owner=owner, budget_s=settings.saga_inline_budget_s)
    return await store.get(tenant_id, saga_id)


async def resume_due(limit: int = 20) -> dict[str, int]:
    """The schedule's job: drive every unfinished saga whose runner is gone, while the invocation has time."""
    resumed = 0
    for tenant_id, saga_id in await store.due(limit):
        left = remaining_s()
        if left is not None and left < 15:
            break
        budget = min(saga_settings().saga_inline_budget_s, (left - 10) if left is not None else 60.0)
        await drive(tenant_id, saga_id, owner=_owner(), budget_s=budget)
        resumed += 1
    return {"resumed": resumed}


async def drive(tenant_id: UUID, saga_id: UUID, *, owner: str, budget_s: float) -> dict[str, Any]:
    """Run the saga from where it stands until it ends or the budget is spent (then the lease lapses and the
    schedule resumes it). Returns the secrets its steps produced in this run."""
    settings = saga_settings()
    saga = await store.lease(tenant_id, saga_id, owner, settings.saga_lease_s)
    if saga is None:
        return {}  # finished, or another runner holds it
    definition = DEFINITIONS.get(saga["kind"])
    if definition is None:
        await store.set_saga(
            tenant_id, saga_id, "failed", owner=owner, lease_s=0, error=f"no saga definition {saga['kind']!r}"
        )
        return {}
    context = SagaContext(
        tenant_id,
        saga_id,
        saga["kind"],
        saga["subject_tenant_id"],
        saga["input"],
        {definition.steps[int(k)].name: v for k, v in saga["outputs"].items() if k.isdigit()},
        saga["correlation_id"],
    )
    runner = _Runner(definition, context, owner, settings, asyncio.get_running_loop().time() + budget_s)
    try:
        if saga["status"] == "running":
            await runner.forward(await store.steps(tenant_id, saga_id))
        else:
            await runner.backward(await store.steps(tenant_id, saga_id), saga["error"] or "compensating")
    except _OutOfTimeError:
        logger.info("saga paused: its invocation budget is spent", extra={"saga_id": str(saga_id)})
        await store.release(tenant_id, saga_id, owner)
    return context.secrets


class _OutOfTimeError(Exception):
    pass


class _Runner:
    def __init__(
        self, definition: SagaDefinition, context: SagaContext, owner: str, settings: SagaSettings, deadline: float
    ) -> None:
        self.definition, self.context, self.owner, self.settings = definition, context, owner, settings
        self.deadline = deadline

    def _left(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    async def _set(self, index: int, status: str, **changes: Any) -> None:
        await store.set_step(
            self.context.tenant_id,
            self.context.saga_id,
            index,
            status,
            owner=self.owner,
            lease_s=self.settings.saga_lease_s,
            **changes,
        )

    async def forward(self, steps: list[dict[str, Any]]) -> None:
        passed_pivot = False
        for index, step in enumerate(self.definition.steps):
            if steps[index]["status"] == "succeeded":
                passed_pivot = passed_pivot or step.pivot
                continue
            error = await self._attempts(index, step, step.action, compensation=False)
            if error is None:
                passed_pivot = passed_pivot or step.pivot
                continue
            if passed_pivot:
                await self._set(
                    index,
                    "failed",
                    error=error,
                    detail=error,
                    saga_status="failed",
                    saga_error=f"step {step.name} failed after the point of no return: {error}",
                )
                return
            await self._set(
                index,
                "failed",
                error=error,
                detail=error,
                saga_status="compensating",
                saga_error=f"step {step.name} failed: {error}",
            )
            await self.backward(await store.steps(self.context.tenant_id, self.context.saga_id), error)
            return
        await store.set_saga(self.context.tenant_id, self.context.saga_id, "completed", owner=self.owner, lease_s=0)

    async def backward(self, steps: list[dict[str, Any]], cause: str) -> None:
        """Compensate every step that did its work, last first."""
        for index in range(len(self.definition.steps) - 1, -1, -1):
            step = self.definition.steps[index]
            if steps[index]["status"] not in ("succeeded", "compensating", "compensation_failed"):
                continue
            if step.compensate is None:
                await self._set(index, "not_compensable", detail="nothing to undo")
                continue
            compensate = step.compensate

            async def undo(context: SagaContext, compensate: Compensation = compensate) -> dict[str, Any] | None:
                await compensate(context)
                return None

            error = await self._attempts(index, step, undo, compensation=True)
            if error is not None:
                await self._set(
                    index,
                    "compensation_failed",
                    error=error,
                    detail=error,
                    saga_status="failed",
                    saga_error=f"compensating {step.name} failed: {error} (after: {cause})",
                )
                return
        await store.set_saga(
            self.context.tenant_id,
            self.context.saga_id,
            "compensated",
            owner=self.owner,
            lease_s=0,
            error=f"undone after: {cause}",
        )

    async def _attempts(self, index: int, step: Step, action: Action, *, compensation: bool) -> str | None:
        """Try `action` up to 1 + retries times; None on success (its output recorded), else the last error."""
        running, done = ("compensating", "compensated") if compensation else ("running", "succeeded")
        error = ""
        for attempt in range(step.retries + 1):
            # past the budget no new attempt starts (the schedule's runner resumes the saga); an attempt that
            # outlives its invocation is retried from its last transition like any crash
            if self._left() <= 0:
                raise _OutOfTimeError
            await self._set(
                index,
                running,
                detail=f"attempt {attempt + 1}" if attempt else "",
                attempt=not compensation,
                compensation_attempt=compensation,
            )
            try:
                output = await asyncio.wait_for(action(self.context), step.timeout_s)
            except StepFailedError as exc:
                error, retryable = str(exc), exc.retryable
            except TimeoutError:
                error, retryable = f"timed out after {step.timeout_s:g} s", True
            except (DependencyUnavailableError, NotFoundError) as exc:
                error, retryable = str(exc), isinstance(exc, DependencyUnavailableError)
            else:
                subject = None
                if output is not None and not compensation:
                    self.context.outputs[step.name] = output
                    if self.context.subject_tenant_id is None:
                        subject = self.context.subject_tenant_id = self.definition.subject(
                            self.context.input, self.context.outputs
                        )
                await self._set(
                    index,
                    done,
                    output=output if not compensation else None,
                    current_step=index + 1 if not compensation else None,
                    subject_tenant_id=subject,
                )
                return None
            logger.info(
                "saga step attempt failed",
                extra={"saga_id": str(self.context.saga_id), "step": step.name, "error": error, "retry": retryable},
            )
            if not retryable:
                break
            if attempt < step.retries:
                await asyncio.sleep(min(self.settings.saga_retry_base_s * 2**attempt, 30.0))
        return error or "failed"
