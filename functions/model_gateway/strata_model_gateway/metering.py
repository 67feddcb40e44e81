"""Every call metered: tokens, latency, provider and cost (from the catalogue's prices). A call's record goes on
the MODEL_USAGE spool (no Postgres commit on the call's path); the scheduled flush (every minute, an invocation of
its own) stores records in `model_usage` with their ModelUsageRecorded events in the outbox, exactly once, and
publishes the events. Readers that need every call so far (usage summaries, budget totals) flush first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from strata import db, spool
from strata.errors import BadRequestError
from strata.events.models import ModelUsageRecorded
from strata.events.outbox import publish_later
from strata_model_gateway.catalogue import Entry
from strata_model_gateway.providers.base import Usage

if TYPE_CHECKING:
    import asyncpg


@dataclass(frozen=True)
class Metered:
    """One call's `model_usage` row (JSON values) and the correlation id its event carries."""

    row: dict[str, Any]
    correlation_id: str

    def encode(self) -> str:
        return json.dumps([self.row, self.correlation_id], separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Metered:
        row, correlation_id = json.loads(text)
        return cls(row, correlation_id)


async def record(
    tenant_id: UUID,
    entry: Entry,
    usage: Usage,
    latency_ms: float,
    *,
    purpose: str,
    run_id: UUID | None,
    task_id: str | None,
    cache_hit: bool,
    correlation_id: str,
) -> tuple[UUID, int]:
    """Meter one call; returns (usage id, cost in micro-USD). A cache hit costs nothing. Only a plain row is built
    here; its event is made when the row is stored."""
    cost = 0 if cache_hit else entry.cost_micro_usd(usage.input_tokens, usage.output_tokens, usage.cached_tokens)
    usage_id = uuid4()
    row = {
        "usage_id": str(usage_id),
        "tenant_id": str(tenant_id),
        "model_name": entry.name,
        "provider": entry.provider,
        "provider_model": entry.provider_model,
        "purpose": purpose,
        "run_id": str(run_id) if run_id else None,
        "task_id": task_id,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "cost_micro_usd": cost,
        "latency_ms": round(latency_ms),
        "cache_hit": cache_hit,
        "at": datetime.now(UTC).isoformat(),
    }
    await spool.put(MODEL_USAGE, Metered(row, correlation_id))
    return usage_id, cost


def _event(row: asyncpg.Record, correlation_id: str) -> ModelUsageRecorded:
    """The row's event; its id is the usage id, so a redelivered record can never publish a second one."""
    return ModelUsageRecorded(
        event_id=row["usage_id"],
        occurred_at=row["at"],
        tenant_id=row["tenant_id"],
        correlation_id=correlation_id,
        usage_id=row["usage_id"],
        provider=row["provider"],
        model=row["model_name"],
        purpose=row["purpose"],
        run_id=row["run_id"],
        task_id=row["task_id"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cached_tokens=row["cached_tokens"],
        cost_micro_usd=row["cost_micro_usd"],
        latency_ms=row["latency_ms"],
    )


async def write(records: list[Metered]) -> int:
    """Store records not stored yet, each with its ModelUsageRecorded outbox row, in one transaction; publish the
    events after it. Returns how many were new."""
    if not records:
        return 0
    correlation = {r.row["usage_id"]: r.correlation_id for r in records}
    async with db.transaction() as conn:
        new = await conn.fetch(
            """INSERT INTO model_usage (usage_id, tenant_id, model_name, provider, provider_model, purpose, run_id,
                                        task_id, input_tokens, output_tokens, cached_tokens, cost_micro_usd,
                                        latency_ms, cache_hit, at)
               SELECT usage_id, tenant_id, model_name, provider, provider_model, coalesce(purpose, ''), run_id,
                      task_id, input_tokens, output_tokens, coalesce(cached_tokens, 0), cost_micro_usd, latency_ms,
                      coalesce(cache_hit, false), coalesce(at, now())
               FROM jsonb_populate_recordset(NULL::model_usage, $1::jsonb)
               ON CONFLICT (usage_id) DO NOTHING
               RETURNING *""",
            [r.row for r in records],
        )
        events = [_event(row, correlation.get(str(row["usage_id"]), "unknown")) for row in new]
        await conn.executemany(
            """INSERT INTO outbox (event_id, tenant_id, source, detail_type, detail) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (event_id) DO NOTHING""",
            [(e.event_id, e.tenant_id, e.SOURCE, e.DETAIL_TYPE, e.model_dump(mode="json")) for e in events],
        )
    if events:
        publish_later(events)
    return len(new)


MODEL_USAGE: spool.Spool[Metered] = spool.Spool(
    name="model-usage",
    stream="strata:model-usage",
    encode=Metered.encode,
    decode=Metered.decode,
    write=write,
)


async def flush() -> dict[str, int]:
    """Move every queued record into Postgres (the scheduled job; and readers, before they sum usage)."""
    return await spool.flush(MODEL_USAGE)


GROUPS = {
    "hour": """to_char(date_trunc('hour', at AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:00"Z"')""",
    "day": "(at AT TIME ZONE 'UTC')::date::text",
    "model": "model_name",
    "run": "run_id::text",
    "purpose": "purpose",
}
SPLITS = {"model": "model_name", "purpose": "purpose"}
MAX_DAYS = 366  # days a summary may span after its first
MAX_HOUR_DAYS = 31  # UTC days, inclusive, an hourly summary may cover


async def summary(
    tenant_id: UUID, start: date, end: date, group_by: str, run_id: UUID | None, split_by: str | None = None
) -> dict[str, Any]:
    """Calls, tokens, cost and latency between two UTC days (inclusive), grouped by hour, day, model, run or
    purpose; with `split_by` (model or purpose) each group is split further and carries its `split`, ordered by key
    then split. Totals are over every call either way."""
    if end < start:
        raise BadRequestError("`to` is before `from`")
    if (end - start).days > MAX_DAYS:
        raise BadRequestError(f"at most {MAX_DAYS} days per query")
    if group_by == "hour" and (end - start).days >= MAX_HOUR_DAYS:
        raise BadRequestError(f"at most {MAX_HOUR_DAYS} days per query with group_by=hour")
    if split_by is not None and split_by == group_by:
        raise BadRequestError(f"split_by={split_by} is the same as group_by: split by something else, or not at all")
    await flush()
    args: list[Any] = [start, end]
    run_filter = ""
    if run_id is not None:
        args.append(run_id)
        run_filter = " AND run_id = $3"
    split = f", {SPLITS[split_by]} AS split" if split_by is not None else ""
    columns = "1, 2" if split else "1"
    rows = await db.fetch(
        f"""SELECT {GROUPS[group_by]} AS key{split}, count(*) AS calls, count(*) FILTER (WHERE cache_hit) AS cache_hits,
                   sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                   sum(cached_tokens) AS cached_tokens, sum(cost_micro_usd) AS cost_micro_usd,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms
            FROM model_usage
            WHERE at >= $1::date AND at < $2::date + 1{run_filter}
            GROUP BY {columns} ORDER BY {columns}""",  # noqa: S608 - expressions from GROUPS and SPLITS, values bound
        *args,
        tenant_id=tenant_id,
    )
    groups = [
        {
            "key": r["key"],
            **({"split": r["split"]} if split else {}),
            "calls": int(r["calls"]),
            "cache_hits": int(r["cache_hits"]),
            "input_tokens": int(r["input_tokens"] or 0),
            "output_tokens": int(r["output_tokens"] or 0),
            "cached_tokens": int(r["cached_tokens"] or 0),
            "cost_micro_usd": int(r["cost_micro_usd"] or 0),
            "p50_latency_ms": float(r["p50_latency_ms"] or 0),
        }
        for r in rows
    ]
    totals = {
        k: sum(g[k] for g in groups)
        for k in ("calls", "cache_hits", "input_tokens", "output_tokens", "cached_tokens", "cost_micro_usd")
    }
    return {
        "from": start,
        "to": end,
        "group_by": group_by,
        "split_by": split_by,
        "groups": groups,
        "totals": totals,
    }
