"""The request log's consumer side: a scheduled job drains the Redis stream every function writes into
`request_log` and `usage_daily` (exactly once), prunes old rows; and the tenant's views of both."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import Field

from strata import db, spool
from strata.config import Settings
from strata.errors import BadRequestError
from strata.pagination import decode_values, encode_values
from strata.requestlog import REQUEST_LOG, RequestRecord


class UsageSettings(Settings):
    request_log_days: int = Field(default=30, ge=1, le=400, description="How long single requests are kept")
    flush_max_batches: int = Field(default=50, ge=1, description="Batches one scheduled flush may move")


async def flush_request_log() -> dict[str, int]:
    """Move queued entries into Postgres (exactly once: see strata.spool), stamp the keys used, prune old rows."""
    moved = await spool.flush(REQUEST_LOG, UsageSettings().flush_max_batches, after_write=_mark_keys_used)
    return {**moved, "pruned": await _prune()}


async def _mark_keys_used(records: list[RequestRecord]) -> None:
    """Each API key's `last_used_at`: the latest request of the batch (never moved backwards)."""
    latest: dict[UUID, datetime] = {}
    for record in records:
        if record.principal_id.startswith("key:"):
            key_id, at = UUID(record.principal_id[4:]), datetime.fromisoformat(record.at)
            latest[key_id] = max(at, latest.get(key_id, at))
    if latest:
        async with db.transaction() as conn:
            await conn.execute(
                """UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.at)
                   FROM unnest($1::uuid[], $2::timestamptz[]) AS u(key_id, at) WHERE k.key_id = u.key_id""",
                list(latest),
                list(latest.values()),
            )


async def _prune() -> int:
    cutoff = datetime.now(UTC) - timedelta(days=UsageSettings().request_log_days)
    async with db.transaction() as conn:
        status: str = await conn.execute("DELETE FROM request_log WHERE at < $1", cutoff)
    return int(status.split()[-1])


GROUPS = {"day": "day", "key": "principal_id", "route": "route"}


async def summary(tenant_id: UUID, start: date, end: date, group_by: str, principal_id: str | None) -> dict[str, Any]:
    """Requests, errors, bytes and latency between `start` and `end` (inclusive), grouped by day, key or route."""
    if end < start:
        raise BadRequestError("`to` is before `from`")
    if (end - start).days > 366:
        raise BadRequestError("at most 366 days per query")
    column = GROUPS[group_by]
    args: list[Any] = [tenant_id, start, end]
    principal_filter = ""
    if principal_id is not None:
        args.append(principal_id)
        principal_filter = " AND principal_id = $4"
    rows = await db.fetch(
        f"""SELECT {column} AS key, sum(requests) AS requests,
                   sum(requests) FILTER (WHERE status_class = '4xx') AS client_errors,
                   sum(requests) FILTER (WHERE status_class = '5xx') AS server_errors,
                   sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out,
                   sum(latency_ms_total) / sum(requests) AS mean_latency_ms, max(latency_ms_max) AS max_latency_ms
            FROM usage_daily WHERE tenant_id = $1 AND day BETWEEN $2 AND $3{principal_filter}
            GROUP BY 1 ORDER BY 1""",  # noqa: S608 - the column comes from GROUPS, filters are bound
        *args,
        tenant_id=tenant_id,
    )
    groups = [_figures(dict(r)) for r in rows]
    totals = _figures(
        {
            "key": None,
            **{k: sum(g[k] for g in groups) for k in ("requests", "client_errors", "server_errors")},
            **{k: sum(g[k] for g in groups) for k in ("bytes_in", "bytes_out")},
            "mean_latency_ms": (
                sum(g["mean_latency_ms"] * g["requests"] for g in groups) / sum(g["requests"] for g in groups)
                if groups
                else 0.0
            ),
            "max_latency_ms": max((g["max_latency_ms"] for g in groups), default=0.0),
        }
    )
    return {"from": start, "to": end, "group_by": group_by, "groups": groups, "totals": totals}


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": str(row["key"]) if row["key"] is not None else None,
        "requests": int(row["requests"] or 0),
        "client_errors": int(row["client_errors"] or 0),
        "server_errors": int(row["server_errors"] or 0),
        "bytes_in": int(row["bytes_in"] or 0),
        "bytes_out": int(row["bytes_out"] or 0),
        "mean_latency_ms": round(float(row["mean_latency_ms"] or 0.0), 3),
        "max_latency_ms": round(float(row["max_latency_ms"] or 0.0), 3),
    }


def _cursor(at: datetime, request_id: str) -> str:
    return encode_values([at, request_id])


def _uncursor(cursor: str) -> tuple[datetime, str]:
    at, request_id = decode_values(cursor, 2)
    try:
        return datetime.fromisoformat(str(at)), str(request_id)
    except ValueError as exc:
        raise BadRequestError("the cursor is not one this API issued") from exc


async def requests(
    tenant_id: UUID,
    limit: int,
    cursor: str | None,
    principal_id: str | None,
    status: int | None,
    route: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's logged requests, newest first, filtered, cursor paginated."""
    clauses: list[str] = ["tenant_id = $1"]
    args: list[Any] = [tenant_id]
    for column, value in (("principal_id", principal_id), ("status", status), ("route", route)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if cursor:
        at, request_id = _uncursor(cursor)
        args += [at, request_id]
        clauses.append(f"(at, request_id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await db.fetch(
        "SELECT request_id, principal_id, route, method, path, status, latency_ms, bytes_in, bytes_out, at "  # noqa: S608
        f"FROM request_log WHERE {' AND '.join(clauses)} ORDER BY at DESC, request_id DESC LIMIT ${len(args)}",
        *args,
        tenant_id=tenant_id,
    )
    items = [dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    return items, _cursor(items[-1]["at"], items[-1]["request_id"]) if more else None
