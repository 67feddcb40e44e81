"""Circuit breakers with their state in Redis, shared by every execution environment of every function.

closed --(`failure_threshold` consecutive failures)--> open --(`open_for_s` later, one probe allowed)--> half-open
half-open --(the probe succeeds)--> closed;  half-open --(the probe fails)--> open again.
Used for model providers (L04) and peer calls. When Redis itself is unreachable the breaker admits the call:
it protects against a failing dependency, it must not become one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from aws_lambda_powertools import Logger

from strata.cache import get_redis, run_script

logger = Logger(child=True)

State = Literal["closed", "open", "half_open"]

# KEYS[1] the breaker's hash; ARGV: op ("allow" | "success" | "failure"), now_ms, failure_threshold, open_for_ms
# Returns {allowed (1/0), state}.
BREAKER = """
local key, op, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local threshold, open_for = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HGET', key, 'state') or 'closed'
local failures = tonumber(redis.call('HGET', key, 'failures') or '0')
local changed = tonumber(redis.call('HGET', key, 'changed') or '0')
local allowed = 1
if op == 'allow' then
  if state == 'open' then
    if now - changed >= open_for then
      state = 'half_open'
      redis.call('HSET', key, 'state', state, 'changed', now)
    else
      allowed = 0
    end
  elseif state == 'half_open' then
    -- one probe at a time; a probe that never reported back is replaced after open_for
    if now - changed < open_for then allowed = 0 else redis.call('HSET', key, 'changed', now) end
  end
elseif op == 'success' then
  if state ~= 'closed' or failures > 0 then
    state = 'closed'
    redis.call('HSET', key, 'state', state, 'failures', 0, 'changed', now)
  end
elseif op == 'failure' then
  if state == 'half_open' then
    state = 'open'
    redis.call('HSET', key, 'state', state, 'changed', now)
  elseif state == 'closed' then
    failures = failures + 1
    if failures >= threshold then
      state = 'open'
      redis.call('HSET', key, 'state', state, 'failures', failures, 'changed', now)
    else
      redis.call('HSET', key, 'failures', failures)
    end
  end
end
redis.call('PEXPIRE', key, math.max(open_for * 10, 3600000))
return {allowed, state, failures}
"""


@dataclass
class Breaker:
    """One named breaker (e.g. `provider:ollama`); make one per call (it remembers what `allow` saw)."""

    name: str
    failure_threshold: int = 5
    open_for_s: float = 30.0
    _clean: bool = False  # allow() saw it closed with no failures: a success then needs no write
    _admitted: bool = False  # seen() found it closed: the next allow() needs no round trip

    @property
    def key(self) -> str:
        return f"strata:breaker:{self.name}"

    async def _run(self, op: str) -> tuple[bool, State, int]:
        now_ms = int(time.time() * 1000)
        allowed, state, failures = await run_script(
            BREAKER, [self.key], [op, now_ms, self.failure_threshold, int(self.open_for_s * 1000)]
        )
        named: State = "open" if state == "open" else "half_open" if state == "half_open" else "closed"
        return bool(allowed), named, int(failures)

    def seen(self, state: str | None, failures: str | int | None) -> bool:
        """Take the state a pipelined read saw (`HMGET key state failures`): when it is closed, the call may go
        ahead with no round trip of its own. Returns whether `allow()` can be skipped."""
        if (state or "closed") != "closed":
            return False
        self._clean = int(failures or 0) == 0
        self._admitted = True
        return True

    async def allow(self) -> bool:
        """Whether a call may go ahead now (half-open: only the one probe)."""
        if self._admitted:  # a pipelined read saw it closed; the next allow() asks Redis again
            self._admitted = False
            return True
        try:
            allowed, state, failures = await self._run("allow")
        except Exception as exc:  # Redis down: do not turn a cache outage into a provider outage
            logger.warning(
                "breaker state unavailable; admitting", extra={"breaker": self.name, "error": str(exc)[:200]}
            )
            return True
        self._clean = state == "closed" and failures == 0
        return allowed

    async def record(self, ok: bool) -> State | None:
        """Report the outcome of an admitted call; returns the state after it (None when Redis is down). A success
        on a breaker `allow` saw closed and clean changes nothing, so it costs no round trip."""
        if ok and self._clean:
            return "closed"
        try:
            return (await self._run("success" if ok else "failure"))[1]
        except Exception as exc:
            logger.warning("breaker state unavailable", extra={"breaker": self.name, "error": str(exc)[:200]})
            return None

    async def state(self) -> State:
        value = await get_redis().hget(self.key, "state")
        return "open" if value == "open" else "half_open" if value == "half_open" else "closed"
