"""The request log (owned by L09, produced by every function): each authenticated request a function answers
becomes one record on the REQUEST_LOG spool (sent with the request's other spooled records when it ends); L09's
flush job moves them into Postgres (`request_log`, `usage_daily`) exactly once with `write`. When Redis is
unreachable the record goes through the same `write` directly, so no request goes unrecorded."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

from strata import spool


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

    def encode(self) -> str:
        """The spool entry: the values as one JSON array (cheaper to send than eleven fields)."""
        return json.dumps(astuple(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> RequestRecord:
        return cls(*json.loads(text))

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
    await spool.put(REQUEST_LOG, entry)


async def write(entries: list[RequestRecord]) -> int:
    """Insert entries (ignoring any already recorded, and any of a tenant that no longer exists) and add exactly
    those to the daily usage; one transaction. Returns how many were new."""
    from strata import db

    if not entries:
        return 0
    columns = list(zip(*(e.row() for e in entries), strict=True))
    async with db.transaction() as conn:
        inserted: int = await conn.fetchval(
            f"""WITH new AS (
                    INSERT INTO request_log ({INSERT_COLUMNS})
                    SELECT r.* FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                                         $7::smallint[], $8::real[], $9::integer[], $10::integer[], $11::timestamptz[])
                        AS r ({INSERT_COLUMNS})
                    -- a request answered while its deleted tenant's key was still in the authorizer's cache
                    WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.tenant_id = r.tenant_id)
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


REQUEST_LOG: spool.Spool[RequestRecord] = spool.Spool(
    name="request-log",
    stream="strata:request-log",
    encode=RequestRecord.encode,
    decode=RequestRecord.decode,
    write=write,
    group="l09-flush",
)
