"""A plan: the contract between L05 (which makes it) and L02 (which runs it). A directed acyclic graph of tasks,
each done by a tool or an agent, with typed inputs that may take values from the outputs of the tasks it depends
on, and its own timeout and retry policy. Plans are signed over their canonical JSON, so the runtime runs exactly
what planning (and supervision) saw.

An input value `{"$from": "<task id>", "path": "a.b.0"}`, anywhere in a task's input, is replaced when the task
becomes ready by that part of the named task's output (`path` empty: the whole output)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strata.assertions import Assertion
from strata.events.common import MicroUsd, TaskKey

MAX_TASKS = 1000
REFERENCE = "$from"


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0, le=3600, description="Doubled after each failed attempt")


class PlanTask(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    task_id: TaskKey
    title: str = Field(min_length=1, max_length=500)
    kind: Literal["tool", "agent"]
    tool: str | None = Field(default=None, max_length=64, description="For a tool task: the tool's name")
    agent_id: UUID | None = Field(default=None, description="For an agent task: the L01 agent doing it")
    instructions: str = Field(default="", max_length=20_000, description="For an agent task: what to do")
    input: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[TaskKey] = Field(default_factory=list, max_length=MAX_TASKS)
    timeout_s: float = Field(default=300, gt=0, le=86_400)
    retry: RetryPolicy = RetryPolicy()
    output_schema: dict[str, Any] | None = None
    success_criteria: list[Assertion] = Field(
        default_factory=list, max_length=50, description="Assertions on the output that evaluation (L06) checks"
    )
    rubric: str | None = Field(
        default=None, max_length=5000, description="What a good output is, for evaluation's LLM judge (L06)"
    )
    estimated_cost_micro_usd: MicroUsd = 0

    @model_validator(mode="after")
    def _assignment_fits(self) -> PlanTask:
        if self.kind == "tool" and not self.tool:
            raise ValueError(f"task {self.task_id}: a tool task names its tool")
        if self.kind == "agent" and self.tool:
            raise ValueError(f"task {self.task_id}: an agent task names no tool")
        return self


class PlanBody(BaseModel):
    """What a strategy (or a template) produces: the tasks."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tasks: list[PlanTask] = Field(min_length=1, max_length=MAX_TASKS)


def references(value: Any) -> Iterator[tuple[str, str]]:
    """Every (task id, path) a value takes from earlier outputs."""
    if isinstance(value, dict):
        if REFERENCE in value:
            yield str(value[REFERENCE]), str(value.get("path", ""))
            return
        for child in value.values():
            yield from references(child)
    elif isinstance(value, list):
        for child in value:
            yield from references(child)


def problems(body: PlanBody) -> list[str]:
    """Why the plan cannot run (empty when it can): duplicate ids, unknown dependencies, references to tasks it
    does not depend on, malformed references, and cycles (with the tasks on one)."""
    found: list[str] = []
    ids = [t.task_id for t in body.tasks]
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            found.append(f"task id {task_id!r} is used twice")
        seen.add(task_id)
    tasks = {t.task_id: t for t in body.tasks}
    for task in body.tasks:
        for dep in task.depends_on:
            if dep not in tasks:
                found.append(f"task {task.task_id} depends on {dep!r}, which the plan does not have")
            elif dep == task.task_id:
                found.append(f"task {task.task_id} depends on itself")
        for source, path in references(task.input):
            if source not in tasks:
                found.append(f"task {task.task_id} takes input from {source!r}, which the plan does not have")
            elif source not in task.depends_on:
                found.append(f"task {task.task_id} takes input from {source} but does not depend on it")
            if path and any(part == "" for part in path.split(".")):
                found.append(f"task {task.task_id}: the path {path!r} into {source}'s output is malformed")
    cycle = _cycle(tasks)
    if cycle:
        found.append(f"the tasks form a cycle: {' -> '.join(cycle)}")
    return found


def _cycle(tasks: dict[str, PlanTask]) -> list[str]:
    """One cycle of the dependency graph (its tasks, the first repeated at the end), or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in tasks:
        if state.get(root):
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(tasks[root].depends_on))]
        state[root] = 1
        path.append(root)
        while stack:
            node, deps = stack[-1]
            dep = next((d for d in deps if d in tasks), None)
            if dep is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            elif not state.get(dep):
                state[dep] = 1
                path.append(dep)
                stack.append((dep, iter(tasks[dep].depends_on)))
    return []


def roots(body: PlanBody) -> list[str]:
    """Tasks that depend on nothing: ready when the run starts."""
    return [t.task_id for t in body.tasks if not t.depends_on]


def resolve_input(value: Any, outputs: dict[str, Any]) -> Any:
    """`value` with every reference replaced by that part of the named task's output. KeyError when a path
    does not exist in the output (the task cannot start: its input is unresolvable)."""
    if isinstance(value, dict):
        if REFERENCE in value:
            found = outputs[str(value[REFERENCE])]
            for part in filter(None, str(value.get("path", "")).split(".")):
                if isinstance(found, list):
                    if not part.isdigit() or int(part) >= len(found):
                        raise KeyError(f"{value[REFERENCE]}.{value.get('path')}: no item {part}")
                    found = found[int(part)]
                elif isinstance(found, dict) and part in found:
                    found = found[part]
                else:
                    raise KeyError(f"{value[REFERENCE]}.{value.get('path')}: no field {part!r}")
            return found
        return {k: resolve_input(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_input(v, outputs) for v in value]
    return value


def signing_key() -> bytes:
    """The key plans are signed with: derived from the platform's service secret for this one purpose, so L05
    signs and L02 checks a plan without another secret to distribute."""
    from strata.config import service_token_secret
    from strata.errors import DependencyUnavailableError

    secret = service_token_secret()
    if not secret:
        raise DependencyUnavailableError("no service secret is configured, so plans cannot be signed or checked")
    return hmac.new(secret.encode(), b"strata/plans/v1", hashlib.sha256).digest()


def canonical(document: dict[str, Any]) -> bytes:
    """The JSON a signature covers: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sign(document: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over the canonical JSON, as `hmac-sha256:<hex>`."""
    return "hmac-sha256:" + hmac.new(key, canonical(document), hashlib.sha256).hexdigest()


def verify(document: dict[str, Any], signature: str, key: bytes) -> bool:
    return hmac.compare_digest(sign(document, key), signature)
