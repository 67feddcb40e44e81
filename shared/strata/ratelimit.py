"""Token-bucket rate limits in Redis: one Lua script checks and charges every bucket of a request atomically."""

from __future__ import annotations

import json
import math
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field

from strata.cache import run_script
from strata.config import get_settings
from strata.errors import DependencyUnavailableError, TooManyRequestsError

logger = Logger(child=True)

# KEYS: one bucket per key; ARGV: now_ms, then (rate_per_s, burst, cost) per bucket.
# A request passes only if every bucket holds its cost; then all are charged. Returns {allowed, remaining of the
# tightest bucket, ms until a token is back in it, ms until the denying buckets allow, index of the first denier,
# then each bucket's remaining tokens}, space-separated in one string.
TOKEN_BUCKETS = """
local now = tonumber(ARGV[1])
local state, allowed, wait, denier = {}, 1, 0, 0
local remaining, refill = math.huge, 0
for i, key in ipairs(KEYS) do
  local rate, burst, cost = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local saved = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(saved[1]) or burst, tonumber(saved[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  state[i] = {key, tokens, rate, burst, cost}
  if tokens < cost then
    allowed = 0
    if denier == 0 then denier = i end
    wait = math.max(wait, math.ceil((cost - tokens) * 1000 / rate))
  end
end
for i, s in ipairs(state) do
  local tokens = s[2]
  if allowed == 1 then tokens = tokens - s[5] end
  redis.call('HSET', s[1], 'tokens', tokens, 'ts', now)
  redis.call('PEXPIRE', s[1], math.ceil(s[4] * 1000 / s[3]) + 1000)
  if tokens < remaining then
    remaining = tokens
    refill = math.ceil((s[4] - tokens) * 1000 / s[3])
  end
end
local answer = {allowed, math.floor(remaining), refill, wait, denier}
for i, s in ipairs(state) do  -- then each bucket's own remaining tokens, for callers that report groups apart
  answer[5 + i] = math.floor(math.min(s[4], s[2] - (allowed == 1 and s[5] or 0)))
end
return table.concat(answer, ' ')  -- one reply to read, not one per number
"""  # noqa: S105 - a Lua script, not a secret


class Tier(BaseModel):
    """Requests per second and burst, for each key and for the tenant as a whole."""

    key_rps: float = Field(gt=0)
    key_burst: int = Field(ge=1)
    tenant_rps: float = Field(gt=0)
    tenant_burst: int = Field(ge=1)


DEFAULT_TIERS: dict[str, Tier] = {
    "free": Tier(key_rps=2, key_burst=10, tenant_rps=5, tenant_burst=20),
    "standard": Tier(key_rps=20, key_burst=50, tenant_rps=100, tenant_burst=200),
    "enterprise": Tier(key_rps=200, key_burst=400, tenant_rps=1000, tenant_burst=2000),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int
    denied_by: int | None = None  # the index of the first bucket that refused

    def headers(self) -> dict[str, str]:
        """IETF RateLimit fields (and Retry-After when denied)."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


@lru_cache
def tiers() -> dict[str, Tier]:
    """The built-in tiers, overridden or extended by STRATA_RATE_LIMIT_TIERS."""
    configured = get_settings().rate_limit_tiers
    extra = {name: Tier.model_validate(value) for name, value in json.loads(configured).items()} if configured else {}
    return {**DEFAULT_TIERS, **extra}


def tier(name: str) -> Tier:
    return tiers().get(name) or tiers()["standard"]


@dataclass(frozen=True)
class Bucket:
    """One token bucket: its Redis key, refill rate per second, capacity, and what this request takes from it."""

    key: str
    rate_per_s: float
    burst: int
    cost: int = 1


def script_arguments(buckets: list[Bucket]) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of TOKEN_BUCKETS for these buckets (for callers that pipeline it with other commands)."""
    args: list[Any] = [int(time.time() * 1000)]
    for bucket in buckets:
        args += [bucket.rate_per_s, bucket.burst, bucket.cost]
    return [b.key for b in buckets], args


def decision(raw: Any, buckets: list[Bucket], group: slice | None = None) -> Decision:
    """TOKEN_BUCKETS's answer as a Decision: the first bucket's limit, the tightest one's remaining and reset. With
    `group`, about those buckets only: allowed unless one of them refused (`denied_by` counts within the group)."""
    raw = [int(float(value)) for value in (raw.split() if isinstance(raw, (str, bytes)) else raw)]
    allowed, remaining, refill_ms, wait_ms, denier = raw[:5]
    denied_by = int(denier) - 1 if int(denier) else None
    first = 0
    if group is not None:
        first, stop, _ = group.indices(len(buckets))
        own = list(zip(buckets[first:stop], raw[5 + first : 5 + stop], strict=True))
        bucket, left = min(own, key=lambda pair: int(pair[1]) / pair[0].burst)
        remaining = left
        refill_ms = math.ceil((bucket.burst - int(left)) * 1000 / bucket.rate_per_s)
        denied_by = denied_by - first if denied_by is not None and first <= denied_by < stop else None
        allowed = denied_by is None
    return Decision(
        bool(allowed),
        buckets[first].burst,
        max(0, int(remaining)),
        math.ceil(int(refill_ms) / 1000),
        max(1, math.ceil(int(wait_ms) / 1000)),
        denied_by,
    )


async def charge_buckets(buckets: list[Bucket]) -> Decision:
    """Take each bucket's cost from it, or nothing from any (raises when Redis is unreachable); `denied_by` is
    the index of the first bucket that refused."""
    keys, args = script_arguments(buckets)
    return decision(await run_script(TOKEN_BUCKETS, keys, args), buckets)


def request_buckets(tenant_id: str, key_id: str, tier: Tier, cost: int = 1) -> list[Bucket]:
    """A request's buckets: its key's and its tenant's."""
    return [
        Bucket(f"strata:rl:{tenant_id}:key:{key_id}", tier.key_rps, tier.key_burst, cost),
        Bucket(f"strata:rl:{tenant_id}:tenant", tier.tenant_rps, tier.tenant_burst, cost),
    ]


async def charge(tenant_id: str, key_id: str, tier: Tier, cost: int = 1) -> Decision:
    """Charge one request to the key's and the tenant's buckets (raises when Redis is unreachable)."""
    return await charge_buckets(request_buckets(tenant_id, key_id, tier, cost))


REQUEST_LIMITED = "this key or tenant is over its rate limit; retry after the Retry-After delay"


async def charge_or_policy(buckets: list[Bucket]) -> Decision | None:
    """Charge `buckets`; when Redis is unreachable, None if the platform fails open, else 503."""
    try:
        return await charge_buckets(buckets)
    except Exception as exc:  # Redis down: the operator chose whether that admits or refuses traffic
        logger.warning("rate limiter unavailable", extra={"error": str(exc)[:300]})
        if get_settings().rate_limit_fail_open:
            return None
        raise DependencyUnavailableError("rate limiting is unavailable, and this platform fails closed") from exc


@dataclass
class DeferredCharge:
    """A request's own buckets, left by the middleware for a route that charges them in its first Redis round trip
    (with its own buckets, in one script call: all or nothing). The route records the outcome with `decide`; if
    it never does (it failed first), the middleware charges them itself when the request ends."""

    buckets: list[Bucket]
    decided: bool = False
    decision: Decision | None = None  # None once decided: admitted without a limiter (failing open)

    def decide(self, decision: Decision | None) -> None:
        """Record the outcome; raise 429 when these buckets refused."""
        self.decided, self.decision = True, decision
        if decision is not None and not decision.allowed:
            raise TooManyRequestsError(REQUEST_LIMITED, headers=decision.headers())


_deferred: ContextVar[DeferredCharge | None] = ContextVar("deferred_rate_limit", default=None)


def defer(charge: DeferredCharge | None) -> Token[DeferredCharge | None]:
    return _deferred.set(charge)


def undefer(token: Token[DeferredCharge | None]) -> None:
    _deferred.reset(token)


def deferred() -> DeferredCharge | None:
    """The current request's charge, if the middleware deferred it to the route and nobody has decided it yet."""
    charge = _deferred.get()
    return charge if charge is not None and not charge.decided else None
