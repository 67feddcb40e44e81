"""Budgets per tenant, run and task, enforced by reserve-then-settle.

Before a call, its worst-case cost (prompt estimate + max output tokens, at the model's prices) is reserved
atomically against every budget that applies (one Lua script: spent + open reservations + this one <= limit, or
nothing is reserved). After the call the reservation is replaced by the actual cost. Reservations expire, so a
crashed call frees its hold. Redis holds the running totals; `model_usage` in Postgres (with the metering spool
flushed into it first) is the truth they are rebuilt from whenever Redis has lost them. A call that would exceed
a budget never runs: 402 + BudgetExceeded.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger

from strata import cache, db, spool
from strata.cache import get_redis, run_script, script_sha
from strata.errors import ConflictError, NotFoundError, PaymentRequiredError
from strata.events.models import BudgetExceeded
from strata.events.outbox import unit_of_work
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import lock_current, soft_delete_row, update_row
from strata_model_gateway import metering

logger = Logger(child=True)

Scope = Literal["tenant", "run", "task"]
Period = Literal["day", "month", "total"]
COLUMNS = "budget_id, scope, scope_id, period, limit_micro_usd, version, created_at, updated_at"


# KEYS per budget: spent, reservations zset (member -> expiry ms), reservation amounts hash.
# ARGV: now_ms, reservation id, amount, expiry_ms, then one limit per budget.
# Returns {0, index, spent, reserved} when budget `index` (1-based) would be exceeded, {-1, index} when its spent
# total is unknown (Redis lost it: the caller rebuilds it from Postgres), else {1}.
RESERVE = """
local now, id, amount, expires = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 3
for i = 1, n do
  local spent_key, zset, amounts = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local spent = redis.call('GET', spent_key)
  if not spent then return {-1, i} end
  local stale = redis.call('ZRANGEBYSCORE', zset, '-inf', now)
  if #stale > 0 then
    redis.call('ZREMRANGEBYSCORE', zset, '-inf', now)
    redis.call('HDEL', amounts, unpack(stale))
  end
  local reserved = 0
  for _, v in ipairs(redis.call('HVALS', amounts)) do reserved = reserved + tonumber(v) end
  if tonumber(spent) + reserved + amount > tonumber(ARGV[4 + i]) then
    return {0, i, tonumber(spent), reserved}
  end
end
for i = 1, n do
  redis.call('ZADD', KEYS[3 * i - 1], expires, id)
  redis.call('HSET', KEYS[3 * i], id, amount)
  redis.call('PEXPIRE', KEYS[3 * i - 1], 86400000 * 40)
  redis.call('PEXPIRE', KEYS[3 * i], 86400000 * 40)
end
return {1}
"""

# KEYS per budget as above; ARGV: reservation id, actual cost. Releases the hold and adds what was spent.
SETTLE = """
for i = 1, #KEYS / 3 do
  redis.call('ZREM', KEYS[3 * i - 1], ARGV[1])
  redis.call('HDEL', KEYS[3 * i], ARGV[1])
  if tonumber(ARGV[2]) > 0 and redis.call('EXISTS', KEYS[3 * i - 2]) == 1 then
    redis.call('INCRBY', KEYS[3 * i - 2], ARGV[2])
  end
end
return 1
"""


@dataclass(frozen=True)
class Budget:
    budget_id: UUID
    scope: Scope
    scope_id: str
    period: Period
    limit_micro_usd: int

    def window(self, now: datetime) -> tuple[str, datetime | None]:
        """The current window's name and start (None: all time)."""
        if self.period == "day":
            start = datetime(now.year, now.month, now.day, tzinfo=UTC)
            return start.date().isoformat(), start
        if self.period == "month":
            return f"{now.year:04d}-{now.month:02d}", datetime(now.year, now.month, 1, tzinfo=UTC)
        return "total", None

    def keys(self, now: datetime) -> list[str]:
        base = f"strata:budget:{self.budget_id}:{self.window(now)[0]}"
        return [f"{base}:spent", f"{base}:holds", f"{base}:amounts"]


@dataclass(frozen=True)
class Reservation:
    reservation_id: str
    budgets: tuple[Budget, ...]
    at: datetime
    amount: int


def task_scope_id(run_id: UUID, task_id: str) -> str:
    return f"{run_id}/{task_id}"


def tenant_budgets_key(tenant_id: UUID) -> str:
    return f"strata:budgets:{tenant_id}"


async def _tenant_budgets(tenant_id: UUID) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT budget_id::text, scope, scope_id, period, limit_micro_usd FROM budgets "
        "WHERE deleted_at IS NULL AND scope = 'tenant'",
        tenant_id=tenant_id,
    )
    return [dict(r) for r in rows]


async def applicable(
    tenant_id: UUID, run_id: UUID | None, task_id: str | None, prefetched: Any = cache.NOT_FETCHED
) -> list[Budget]:
    """The budgets a call of the tenant (for this run and task, if any) counts against. The tenant's own are read
    through Redis (every budget write invalidates them); run and task budgets come from Postgres."""
    rows = await cache.read_through(
        tenant_budgets_key(tenant_id), lambda: _tenant_budgets(tenant_id), ttl_s=300, prefetched=prefetched
    )
    found = [Budget(**{**r, "budget_id": UUID(r["budget_id"])}) for r in rows]
    if run_id is not None:
        scopes: list[tuple[str, str]] = [("run", str(run_id))]
        if task_id is not None:
            scopes.append(("task", task_scope_id(run_id, task_id)))
        scoped = await db.fetch(
            "SELECT budget_id, scope, scope_id, period, limit_micro_usd FROM budgets "
            "WHERE deleted_at IS NULL AND (scope, scope_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            [s for s, _ in scopes],
            [i for _, i in scopes],
            tenant_id=tenant_id,
        )
        found += [Budget(**dict(r)) for r in scoped]
    return found


async def spent_in_postgres(tenant_id: UUID, budget: Budget, now: datetime) -> int:
    """What the budget's current window has spent, from the metered usage (the source of truth)."""
    _, start = budget.window(now)
    where: list[str] = ["true"]
    args: list[Any] = []
    if start is not None:
        args.append(start)
        where.append(f"at >= ${len(args)}")
    if budget.scope == "run":
        args.append(UUID(budget.scope_id))
        where.append(f"run_id = ${len(args)}")
    elif budget.scope == "task":
        run, task = budget.scope_id.split("/", 1)
        args += [UUID(run), task]
        where.append(f"run_id = ${len(args) - 1} AND task_id = ${len(args)}")
    rows = await db.fetch(
        f"SELECT coalesce(sum(cost_micro_usd), 0) AS spent FROM model_usage WHERE {' AND '.join(where)}",  # noqa: S608
        *args,
        tenant_id=tenant_id,
    )
    return int(rows[0]["spent"])


async def _rebuild(tenant_id: UUID, budget: Budget, now: datetime) -> None:
    await metering.flush()
    spent = await spent_in_postgres(tenant_id, budget, now)
    # NX: a concurrent rebuild (or settle) that got there first wins; the value is the same truth
    await get_redis().set(budget.keys(now)[0], spent, nx=True, ex=86400 * 40)


async def reserve(
    tenant_id: UUID, budgets: list[Budget], amount: int, hold_s: float, correlation_id: str
) -> Reservation:
    """Hold `amount` against every budget, or raise 402 (and emit BudgetExceeded once per budget and window)."""
    now = datetime.now(UTC)
    reservation = Reservation(uuid.uuid4().hex, tuple(budgets), now, amount)
    if not budgets:
        return reservation
    keys = [k for b in budgets for k in b.keys(now)]
    expires = int((time.time() + hold_s) * 1000)
    args: list[Any] = [int(time.time() * 1000), reservation.reservation_id, amount, expires]
    args += [b.limit_micro_usd for b in budgets]
    for _ in range(len(budgets) + 1):
        answer = await run_script(RESERVE, keys, args)
        if int(answer[0]) == 1:
            return reservation
        budget = budgets[int(answer[1]) - 1]
        if int(answer[0]) == -1:
            await _rebuild(tenant_id, budget, now)
            continue
        spent, held = int(answer[2]), int(answer[3])
        await _exceeded(tenant_id, budget, spent + held, correlation_id, now)
        raise PaymentRequiredError(
            f"this call could cost up to {amount} micro-USD; the {budget.scope} budget ({budget.period}) has "
            f"{max(0, budget.limit_micro_usd - spent - held)} of {budget.limit_micro_usd} left",
            budget_id=str(budget.budget_id),
            scope=budget.scope,
            period=budget.period,
            limit_micro_usd=budget.limit_micro_usd,
            spent_micro_usd=spent,
            reserved_micro_usd=held,
        )
    raise ConflictError("the budget totals kept changing; retry")


async def settle(reservation: Reservation, actual: int) -> None:
    """Replace the hold with the actual cost (0 when the call failed); sent with the request's other writes at its
    end (strata.spool), in the same round trip."""
    if not reservation.budgets:
        return
    keys = [k for b in reservation.budgets for k in b.keys(reservation.at)]
    args = [reservation.reservation_id, actual]

    async def alone() -> None:
        try:
            await run_script(SETTLE, keys, args)
        except Exception as exc:  # the hold expires by itself; the spend is in Postgres and rebuilt from there
            logger.warning("budget settle failed", extra={"error": str(exc)[:200]})

    try:
        sha = await script_sha(SETTLE)
    except Exception:
        await alone()
        return
    await spool.defer(spool.Write(lambda pipe: pipe.evalsha(sha, len(keys), *keys, *args), alone))


async def _exceeded(tenant_id: UUID, budget: Budget, spent: int, correlation_id: str, now: datetime) -> None:
    flag = f"{budget.keys(now)[0]}:announced"
    if not await get_redis().set(flag, 1, nx=True, ex=86400 * 40):
        return
    async with unit_of_work(tenant_id) as uow:
        await uow.emit(
            BudgetExceeded(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                budget_id=budget.budget_id,
                scope=budget.scope,
                scope_id=budget.scope_id,
                period=budget.period,
                limit_micro_usd=budget.limit_micro_usd,
                spent_micro_usd=spent,
            )
        )


# --- the budgets API ---


async def with_spend(tenant_id: UUID, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Budget rows with their current window and what it has spent (every call metered so far counted)."""
    await metering.flush()
    now = datetime.now(UTC)
    answers = []
    for row in rows:
        budget = Budget(**{k: row[k] for k in ("budget_id", "scope", "scope_id", "period", "limit_micro_usd")})
        window, start = budget.window(now)
        spent = await spent_in_postgres(tenant_id, budget, now)
        answers.append({**row, "window": window, "window_start": start, "spent_micro_usd": spent})
    return answers


async def create(tenant_id: UUID, scope: Scope, scope_id: str, period: Period, limit: int) -> dict[str, Any]:
    budget_id = uuid.uuid4()
    async with db.transaction(tenant_id) as conn:
        taken = await conn.fetchval(
            "SELECT 1 FROM budgets WHERE scope = $1 AND scope_id = $2 AND period = $3 AND deleted_at IS NULL",
            scope,
            scope_id,
            period,
        )
        if taken:
            raise ConflictError(f"a {period} budget for {scope} {scope_id} exists; change its limit instead")
        row = await conn.fetchrow(
            f"INSERT INTO budgets (budget_id, tenant_id, scope, scope_id, period, limit_micro_usd) "  # noqa: S608
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}",
            budget_id,
            tenant_id,
            scope,
            scope_id,
            period,
            limit,
        )
    assert row is not None
    await cache.invalidate(tenant_budgets_key(tenant_id))
    return (await with_spend(tenant_id, [dict(row)]))[0]


async def get(tenant_id: UUID, budget_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM budgets WHERE budget_id = $1 AND deleted_at IS NULL",  # noqa: S608
        budget_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no budget {budget_id}")
    return (await with_spend(tenant_id, [dict(rows[0])]))[0]


async def list_page(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    rows, next_cursor = await fetch_page(
        "budgets", COLUMNS, "budget_id", Where(tenant_id).add("deleted_at IS NULL"), page
    )
    return await with_spend(tenant_id, rows), next_cursor


async def change_limit(tenant_id: UUID, budget_id: UUID, limit: int, expected: int | None) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "budgets", "budget_id", budget_id, expected, "budget")
        row = await update_row(conn, "budgets", "budget_id", budget_id, {"limit_micro_usd": limit}, COLUMNS)
    await cache.invalidate(tenant_budgets_key(tenant_id))
    return (await with_spend(tenant_id, [row]))[0]


async def delete(tenant_id: UUID, budget_id: UUID, expected: int | None) -> None:
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "budgets", "budget_id", budget_id, expected, "budget")
        await soft_delete_row(conn, "budgets", "budget_id", budget_id)
    await cache.invalidate(tenant_budgets_key(tenant_id))
