"""Every call metered: tokens, latency, provider and cost (from the catalogue's prices), recorded in
`model_usage` with a ModelUsageRecorded event in the same transaction; and the tenant's usage summaries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from strata import db
from strata.errors import BadRequestError
from strata.events.models import ModelUsageRecorded
from strata.events.outbox import publish_later
from strata_model_gateway.catalogue import Entry
from strata_model_gateway.providers.base import Usage


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
    """Store one call's usage; returns (usage id, cost in micro-USD). A cache hit costs nothing."""
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
    outbox_row = {
        "event_id": str(event.event_id),
        "source": event.SOURCE,
        "detail_type": event.DETAIL_TYPE,
        "detail": event.model_dump(mode="json"),
    }
    # one round trip: the row and its outbox entry commit together, as the tenant (see migration 0010); the
    # event is published off the call's path, and by the outbox sweeper if this environment freezes first
    pool = await db.get_pool()
    await pool.execute("SELECT strata_record_model_usage($1, $2, $3)", tenant_id, row, outbox_row)
    publish_later([event])
    return usage_id, cost


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
