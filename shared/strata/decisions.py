"""Asking L08 supervision for a policy decision: the request and answer every enforcement point shares, and the
client they ask through.

An answer that depends only on the policies (allow or deny, not a human's approval) is cached briefly in the
environment, keyed by the tenant's policy revision (published in Redis by L08 on every policy or suspension change)
and by the parts of the request the tenant's policies read; a change of policy is therefore seen by the next
request, and the TTL bounds a cache that missed a change's publication. When supervision cannot be asked the
answer is deny: SupervisionUnavailable, which the enforcement point turns into a refusal (fail closed)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from strata import cache, peers
from strata.config import get_settings
from strata.errors import DependencyUnavailableError

logger = Logger(child=True)

Action = Literal["plan.approve", "run.start", "tool.invoke", "model.call"]
Outcome = Literal["allow", "deny", "approval_required"]
MAX_CACHED = 10_000


class EntityRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["Principal", "Agent", "Tool", "Tenant", "Model"]
    id: str = Field(min_length=1, max_length=200)


class Subject(BaseModel):
    """What an approval would be about: asking again for the same subject finds the same approval."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["plan", "tool_call"]
    id: str = Field(min_length=1, max_length=200)


class DecisionRequest(BaseModel):
    """Whether `principal` may take `action` on `resource` in `context`. The enforcement point describes the
    resource (`resource_attributes`, e.g. a tool's settings); the principal is resolved by supervision."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    action: Action
    principal: EntityRef
    resource: EntityRef
    resource_attributes: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    subject: Subject | None = Field(default=None, description="Set to open an approval when one is needed")
    what: str = Field(default="", max_length=2000, description="What an approver is asked to allow")
    details: dict[str, Any] = Field(default_factory=dict, description="What the paused work needs to resume")
    on_behalf_of: str = Field(default="", max_length=200, description="Whom the work is for: they cannot approve it")


class DecidingPolicy(BaseModel):
    source: Literal["platform", "tenant"]
    policy_id: str | None
    name: str
    version: int
    statement: int
    effect: Literal["permit", "forbid"]
    id: str | None = None


class DecisionAnswer(BaseModel):
    decision_id: UUID
    outcome: Outcome
    reasons: list[str]
    policies: list[DecidingPolicy]
    approval_id: UUID | None = None
    deadline: datetime | None = None
    revision: int = Field(description="The tenant's policy revision the decision was made under")
    cacheable: bool = Field(description="Whether an identical request may reuse this answer until the revision moves")
    reads_context: list[str] | None = Field(
        default=None, description="The context attributes the policies read (null: possibly all)"
    )
    suspended: bool = Field(default=False, description="Denied by the kill switch (the tenant or agent is suspended)")
    cached: bool = Field(default=False, description="Answered from the caller's cache")


class SupervisionUnavailable(Exception):
    """Supervision could not be asked: the caller must refuse (fail closed)."""


def revision_key(tenant_id: UUID) -> str:
    """Where L08 publishes the tenant's current policy revision."""
    return f"strata:{{{tenant_id}}}:policy-revision"


_cache: dict[tuple[str, int, str], tuple[float, DecisionAnswer]] = {}
_reads: dict[tuple[str, int], list[str] | None] = {}  # (tenant, revision) -> context attributes its policies read


def clear_cache() -> None:
    _cache.clear()
    _reads.clear()


def _cache_key(request: DecisionRequest, reads_context: list[str] | None) -> str:
    context = request.context if reads_context is None else {k: request.context.get(k) for k in reads_context}
    shape = {
        "action": request.action,
        "principal": request.principal.model_dump(),
        "resource": request.resource.model_dump(),
        "attributes": request.resource_attributes,
        "context": context,
    }
    return json.dumps(shape, sort_keys=True, separators=(",", ":"), default=str)


async def ask(tenant_id: UUID, correlation_id: str, request: DecisionRequest) -> DecisionAnswer:
    """L08's answer (or a cached one). SupervisionUnavailable when it cannot be had."""
    ttl = get_settings().decision_cache_s
    revision = await _revision(tenant_id) if ttl > 0 else None
    tenant = str(tenant_id)
    if revision is not None and (tenant, revision) in _reads:
        hit = _cache.get((tenant, revision, _cache_key(request, _reads[(tenant, revision)])))
        if hit is not None and hit[0] > time.monotonic():
            return hit[1].model_copy(update={"cached": True})
    try:
        response = await peers.call(
            "POST",
            "/v1/decisions",
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            json=request.model_dump(mode="json"),
            timeout_s=10.0,
        )
    except DependencyUnavailableError as exc:
        raise SupervisionUnavailable(f"supervision (L08) could not be reached: {exc}") from exc
    if response.status_code != 200:
        raise SupervisionUnavailable(f"supervision (L08) answered {response.status_code}: {response.text[:300]}")
    answer = DecisionAnswer.model_validate_json(response.content)
    if ttl > 0 and answer.cacheable and revision is None:
        revision = await _adopt_revision(tenant_id, answer.revision)
    if ttl > 0 and answer.cacheable and revision is not None and answer.revision == revision:
        if len(_cache) >= MAX_CACHED:
            clear_cache()
        _reads[(tenant, revision)] = answer.reads_context
        _cache[(tenant, revision, _cache_key(request, answer.reads_context))] = (time.monotonic() + ttl, answer)
    return answer


async def _adopt_revision(tenant_id: UUID, revision: int) -> int | None:
    """Publish the revision an answer was made under when none is published yet (a tenant whose policies never
    changed since Redis last started): only if the key is still absent, so a newer revision published meanwhile
    is never overwritten."""
    try:
        if await cache.get_redis().set(revision_key(tenant_id), revision, nx=True):
            return revision
    except Exception as exc:
        logger.warning("the policy revision could not be published", extra={"error": str(exc)})
    return None


async def _revision(tenant_id: UUID) -> int | None:
    """The tenant's policy revision as published (None: unknown, so nothing is served from the cache)."""
    try:
        value = await cache.get_redis().get(revision_key(tenant_id))
    except Exception as exc:  # a cache is an optimisation: ask supervision instead
        logger.warning("the policy revision could not be read", extra={"error": str(exc)})
        return None
    return int(value) if value is not None else None
