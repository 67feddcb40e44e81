"""Every call metered: tokens, latency, provider and cost (from the catalogue's prices). A call's record goes on
the MODEL_USAGE spool with its ModelUsageRecorded event (no Postgres commit on the call's path); the flush moves
records into `model_usage` and the outbox together, exactly once, within ~0.1 s in a warm environment and by the
scheduled flush otherwise. Readers that need every call so far (usage summaries, budget totals) flush first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from strata import db, spool
from strata.errors import BadRequestError
from strata.events.envelope import event_model
from strata.events.models import ModelUsageRecorded
from strata.events.outbox import publish_later
from strata_model_gateway.catalogue import Entry
from strata_model_gateway.providers.base import Usage


@dataclass(frozen=True)
class Metered:
    """One call's `model_usage` row and its ModelUsageRecorded outbox row, as JSON values."""

    row: dict[str, Any]
    event: dict[str, Any]

    def encode(self) -> str:
        return json.dumps([self.row, self.event], separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Metered:
        row, event = json.loads(text)
        return cls(row, event)


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
    """Meter one call; returns (usage id, cost in micro-USD). A cache hit costs nothing."""
    cost = 0 if cache_hit else entry.cost_micro_usd(usage.input_tokens, usage.output_tokens, usage.cached_tokens)
    usage_id = uuid4()
    event = ModelUsageRecorded(
        tenant_id=tenant_id,
        correlation_id=correlation_id,
        usage_id=usage_id,
        provider=entry.provider,
        model=entry.name,
        purpose=purpose,
        run_id=run_id,
        task_id=task_id,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        cost_micro_usd=cost,
        latency_ms=round(latency_ms),
    )
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
        "at": event.occurred_at.isoformat(),
    }
    outbox_row = {
        "event_id": str(event.event_id),
        "tenant_id": str(tenant_id),
        "source": event.SOURCE,
        "detail_type": event.DETAIL_TYPE,
        "detail": event.model_dump(mode="json"),
    }
    await spool.put(MODEL_USAGE, Metered(row, outbox_row))
    return usage_id, cost


async def write(records: list[Metered]) -> int:
    """Store records not stored yet, each with its outbox row, in one transaction; publish their events after it.
    Returns how many were new."""
    if not records:
        return 0
    async with db.transaction() as conn:
        new = await conn.fetch(
            """WITH usage AS (
                   INSERT INTO model_usage (usage_id, tenant_id, model_name, provider, provider_model, purpose, run_id,
                                            task_id, input_tokens, output_tokens, cached_tokens, cost_micro_usd,
                                            latency_ms, cache_hit, at)
                   SELECT usage_id, tenant_id, model_name, provider, provider_model, coalesce(purpose, ''), run_id,
                          task_id, input_tokens, output_tokens, coalesce(cached_tokens, 0), cost_micro_usd, latency_ms,
                          coalesce(cache_hit, false), coalesce(at, now())
                   FROM jsonb_populate_recordset(NULL::model_usage, $1::jsonb)
                   ON CONFLICT (usage_id) DO NOTHING
                   RETURNING usage_id
               )
               INSERT INTO outbox (event_id, tenant_id, source, detail_type, detail)
               SELECT (e ->> 'event_id')::uuid, (e ->> 'tenant_id')::uuid, e ->> 'source', e ->> 'detail_type',
                      e -> 'detail'
               FROM jsonb_array_elements($2::jsonb) AS e
               WHERE (e -> 'detail' ->> 'usage_id')::uuid IN (SELECT usage_id FROM usage)
               ON CONFLICT (event_id) DO NOTHING
               RETURNING detail_type, detail""",
            [r.row for r in records],
            [r.event for r in records],
        )
    if new:
        publish_later([event_model(row["detail_type"]).from_detail(row["detail"]) for row in new])
    return len(new)


MODEL_USAGE: spool.Spool[Metered] = spool.Spool(
    name="model-usage",
    stream="strata:model-usage",
    encode=Metered.encode,
    decode=Metered.decode,
    write=write,
)
spool.flush_soon(MODEL_USAGE)  # a warm environment moves its calls' records into Postgres ~0.1 s after them


async def flush() -> dict[str, int]:
    """Move every queued record into Postgres (the scheduled job; and readers, before they sum usage)."""
    return await spool.flush(MODEL_USAGE)


GROUPS = {
    "day": "(at AT TIME ZONE 'UTC')::date::text",
    "model": "model_name",
    "run": "run_id::text",
    "purpose": "purpose",
}


async def summary(tenant_id: UUID, start: date, end: date, group_by: str, run_id: UUID | None) -> dict[str, Any]:
    """Calls, tokens, cost and latency between two UTC days (inclusive), grouped by day, model, run or purpose."""
    if end < start:
        raise BadRequestError("`to` is before `from`")
    if (end - start).days > 366:
        raise BadRequestError("at most 366 days per query")
    await flush()
    args: list[Any] = [start, end]
    run_filter = ""
    if run_id is not None:
        args.append(run_id)
        run_filter = " AND run_id = $3"
    rows = await db.fetch(
        f"""SELECT {GROUPS[group_by]} AS key, count(*) AS calls, count(*) FILTER (WHERE cache_hit) AS cache_hits,
                   sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                   sum(cached_tokens) AS cached_tokens, sum(cost_micro_usd) AS cost_micro_usd,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms
            FROM model_usage
            WHERE at >= $1::date AND at < $2::date + 1{run_filter}
            GROUP BY 1 ORDER BY 1""",  # noqa: S608 - the expression comes from GROUPS, values are bound
        *args,
        tenant_id=tenant_id,
    )
    groups = [
        {
            "key": r["key"],
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
    return {"from": start, "to": end, "group_by": group_by, "groups": groups, "totals": totals}
