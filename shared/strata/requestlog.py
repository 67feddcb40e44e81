"""The request log (owned by L09, produced by every function): each authenticated request a function answers
becomes one entry on a Redis stream (one round trip, after the response is built); L09's flush job moves entries
into Postgres (`request_log`, `usage_daily`) exactly once with `write`. When Redis is unreachable the entry goes
through the same `write` directly, so no request goes unrecorded."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from strata.cache import get_redis

logger = Logger(child=True)

STREAM = "strata:request-log"
STREAM_MAX_LEN = 2_000_000  # a backstop if the flush job stops for long; trimmed approximately


@dataclass(frozen=True)
class RequestRecord:
    request_id: str
    tenant_id: str
    principal_id: str
    route: str
    method: str
    path: str
    status: int
    latency_ms: float
    bytes_in: int
    bytes_out: int
    at: str  # ISO 8601, UTC

    def fields(self) -> dict[str, str]:
        """The stream entry: one field holding the values as a JSON array (cheaper to send than eleven)."""
        return {"r": json.dumps(astuple(self), separators=(",", ":"))}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> RequestRecord:
        """A record from its stream entry (also the field-per-value form entries had before)."""
        if "r" in fields:
            return cls(*json.loads(fields["r"]))
        return cls(
            request_id=fields["request_id"],
            tenant_id=fields["tenant_id"],
            principal_id=fields["principal_id"],
            route=fields["route"],
            method=fields["method"],
            path=fields["path"],
            status=int(fields["status"]),
            latency_ms=float(fields["latency_ms"]),
            bytes_in=int(fields["bytes_in"]),
            bytes_out=int(fields["bytes_out"]),
            at=fields["at"],
        )

    def row(self) -> tuple[Any, ...]:
        """The `request_log` columns, in INSERT_COLUMNS order."""
        from uuid import UUID

        return (
            self.request_id,
            UUID(self.tenant_id),
            self.principal_id,
            self.route,
            self.method,
            self.path,
            self.status,
            self.latency_ms,
            self.bytes_in,
            self.bytes_out,
            datetime.fromisoformat(self.at),
        )


INSERT_COLUMNS = "request_id, tenant_id, principal_id, route, method, path, status, latency_ms, bytes_in, bytes_out, at"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def record(entry: RequestRecord) -> None:
    """Queue one entry; never fails the request it describes."""
    try:
        await get_redis().xadd(STREAM, entry.fields(), maxlen=STREAM_MAX_LEN, approximate=True)  # type: ignore[arg-type]
        return
    except Exception as exc:
        logger.warning("request log stream unavailable; writing directly", extra={"error": str(exc)[:300]})
    try:
        await write([entry])
    except Exception:
        logger.exception("request log entry lost", extra={"request_id": entry.request_id})


async def write(entries: list[RequestRecord]) -> int:
    """Insert entries (ignoring any already recorded) and add exactly those to the daily usage; one transaction.
    Returns how many were new."""
    from strata import db

    if not entries:
        return 0
    columns = list(zip(*(e.row() for e in entries), strict=True))
    async with db.transaction() as conn:
        inserted: int = await conn.fetchval(
            f"""WITH new AS (
                    INSERT INTO request_log ({INSERT_COLUMNS})
                    SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                                         $7::smallint[], $8::real[], $9::integer[], $10::integer[], $11::timestamptz[])
                    ON CONFLICT (request_id) DO NOTHING
                    RETURNING *
                ), usage AS (
                    INSERT INTO usage_daily AS u (tenant_id, day, principal_id, route, status_class, requests,
                                                  bytes_in, bytes_out, latency_ms_total, latency_ms_max)
                    SELECT tenant_id, (at AT TIME ZONE 'UTC')::date, principal_id, route, (status / 100) || 'xx',
                           count(*), sum(bytes_in), sum(bytes_out), sum(latency_ms), max(latency_ms)
                    FROM new GROUP BY 1, 2, 3, 4, 5
                    ON CONFLICT (tenant_id, day, principal_id, route, status_class) DO UPDATE SET
                        requests = u.requests + excluded.requests,
                        bytes_in = u.bytes_in + excluded.bytes_in,
                        bytes_out = u.bytes_out + excluded.bytes_out,
                        latency_ms_total = u.latency_ms_total + excluded.latency_ms_total,
                        latency_ms_max = greatest(u.latency_ms_max, excluded.latency_ms_max)
                )
                SELECT count(*) FROM new""",  # noqa: S608 - constant column list
            *columns,
        )
    return inserted
