"""The SQL of outbound webhooks (tables `webhooks`, `webhook_deliveries`, `webhook_delivery_attempts`). Every
function runs on the caller's connection, inside its tenant-scoped transaction, except the sweeper's scan."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strata import db

if TYPE_CHECKING:
    import asyncpg

# What a webhook shows: never its secrets; the end of the previous secret's overlap only while it lasts.
WEBHOOK_COLUMNS = (
    "webhook_id, url, description, event_types, filters, status, disabled_reason, version, "
    "consecutive_dead_letters, secret_rotated_at, "
    "CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at, "
    "last_delivery_at, last_success_at, created_at, updated_at"
)
DELIVERY_COLUMNS = (
    "delivery_id, webhook_id, event_id, event_type, status, attempt_count, redeliveries, "
    "CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, "
    "last_status_code, last_error, delivered_at, dead_lettered_at, created_at, updated_at"
)
ATTEMPT_COLUMNS = "attempt, started_at, duration_ms, status_code, error, response_excerpt, signed_with"
MAX_ATTEMPTS_SHOWN = 100
# The columns a PATCH may change (the route's model admits no others).
CHANGEABLE = ("url", "description", "event_types", "filters", "status")


async def count_webhooks(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM webhooks"))


async def insert_webhook(
    conn: asyncpg.Connection,
    webhook_id: UUID,
    url: str,
    description: str,
    event_types: list[str],
    filters: dict[str, Any],
    secret: str,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""INSERT INTO webhooks (webhook_id, tenant_id, url, description, event_types, filters, secret)
            VALUES ($1, strata_tenant(), $2, $3, $4, $5, $6) RETURNING {WEBHOOK_COLUMNS}""",  # noqa: S608
        webhook_id,
        url,
        description,
        event_types,
        filters,
        secret,
    )
    assert row is not None
    return dict(row)


async def webhook(conn: asyncpg.Connection, webhook_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = $1{' FOR UPDATE' if lock else ''}",  # noqa: S608
        webhook_id,
    )
    return dict(row) if row is not None else None


async def update_webhook(
    conn: asyncpg.Connection, webhook_id: UUID, changes: dict[str, Any], *, enabled: bool, disabled_by: str | None
) -> dict[str, Any]:
    """Apply `changes` (columns of CHANGEABLE) and bump the version. `enabled`: the change turns a disabled webhook
    back on (its dead-letter count starts again); `disabled_by`: it turns it off, saying who."""
    sets = ["version = version + 1", "updated_at = now()"]
    args: list[Any] = [webhook_id]
    for column, value in changes.items():
        if column not in CHANGEABLE:
            raise ValueError(f"{column} cannot be changed")
        args.append(value)
        sets.append(f"{column} = ${len(args)}")
    if enabled:
        sets += ["disabled_reason = NULL", "consecutive_dead_letters = 0"]
    if disabled_by is not None:
        args.append(f"disabled by {disabled_by}")
        sets.append(f"disabled_reason = ${len(args)}")
    row = await conn.fetchrow(
        f"UPDATE webhooks SET {', '.join(sets)} WHERE webhook_id = $1 RETURNING {WEBHOOK_COLUMNS}",  # noqa: S608
        *args,
    )
    assert row is not None
    return dict(row)


async def delete_webhook(conn: asyncpg.Connection, webhook_id: UUID) -> None:
    """The webhook and (by cascade) its deliveries and their attempts."""
    await conn.execute("DELETE FROM webhooks WHERE webhook_id = $1", webhook_id)


async def rotate_secret(conn: asyncpg.Connection, webhook_id: UUID, secret: str, overlap_s: int) -> dict[str, Any]:
    """Make `secret` the signing secret; the current one keeps signing beside it for `overlap_s` (0: it stops now).
    A secret still overlapping from an earlier rotation stops now: at most two sign at once."""
    row = await conn.fetchrow(
        f"""UPDATE webhooks SET
                previous_secret = CASE WHEN $3::integer > 0 THEN secret END,
                previous_secret_expires_at = CASE WHEN $3::integer > 0
                                                  THEN now() + make_interval(secs => $3::integer) END,
                secret = $2, secret_rotated_at = now(), version = version + 1, updated_at = now()
            WHERE webhook_id = $1 RETURNING {WEBHOOK_COLUMNS}""",  # noqa: S608
        webhook_id,
        secret,
        overlap_s,
    )
    assert row is not None
    return dict(row)


async def matching_webhooks(conn: asyncpg.Connection, event_type: str) -> list[asyncpg.Record]:
    """The tenant's active webhooks subscribed to `event_type` (or to every type)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT webhook_id, filters FROM webhooks
           WHERE status = 'active' AND (event_types @> ARRAY[$1]::text[] OR event_types @> ARRAY['*']::text[])""",
        event_type,
    )
    return rows


async def insert_deliveries(
    conn: asyncpg.Connection,
    webhook_ids: list[UUID],
    delivery_ids: list[UUID],
    event_id: UUID,
    event_type: str,
    payload: dict[str, Any],
) -> list[UUID]:
    """One delivery per webhook for the event; a webhook that already has one for it gets none (a duplicate event).
    Returns the ids of the deliveries created."""
    rows = await conn.fetch(
        """INSERT INTO webhook_deliveries (tenant_id, delivery_id, webhook_id, event_id, event_type, payload)
           SELECT strata_tenant(), d, w, $3, $4, $5 FROM unnest($1::uuid[], $2::uuid[]) AS t(d, w)
           ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING delivery_id""",
        delivery_ids,
        webhook_ids,
        event_id,
        event_type,
        payload,
    )
    return [r["delivery_id"] for r in rows]


async def delivery_for_attempt(conn: asyncpg.Connection, delivery_id: UUID) -> dict[str, Any] | None:
    """Everything an attempt needs, the delivery row locked: its state, how long until it is due (seconds, by the
    database's clock), the body, and the webhook's URL, status and signing secrets."""
    row = await conn.fetchrow(
        """SELECT d.delivery_id, d.webhook_id, d.event_id, d.event_type, d.payload, d.status, d.attempt_count,
                  d.attempt_base, extract(epoch FROM d.next_attempt_at - now())::float8 AS due_in_s,
                  coalesce(d.leased_until > now(), false) AS leased,
                  w.url, w.status AS webhook_status, w.secret,
                  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret
           FROM webhook_deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
           WHERE d.delivery_id = $1 FOR UPDATE OF d""",
        delivery_id,
    )
    return dict(row) if row is not None else None


async def lease(conn: asyncpg.Connection, delivery_id: UUID, seconds: float) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET leased_until = now() + make_interval(secs => $2) WHERE delivery_id = $1",
        delivery_id,
        seconds,
    )


async def record_attempt(
    conn: asyncpg.Connection,
    delivery_id: UUID,
    attempt: int,
    started_at: datetime,
    duration_ms: float,
    status_code: int | None,
    error: str | None,
    response_excerpt: str | None,
    signed_with: int,
) -> None:
    await conn.execute(
        """INSERT INTO webhook_delivery_attempts (tenant_id, delivery_id, attempt, started_at, duration_ms,
                                                  status_code, error, response_excerpt, signed_with)
           VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8)""",
        delivery_id,
        attempt,
        started_at,
        duration_ms,
        status_code,
        error,
        response_excerpt,
        signed_with,
    )


async def finish_attempt(
    conn: asyncpg.Connection,
    delivery_id: UUID,
    attempt: int,
    status: str,
    status_code: int | None,
    error: str | None,
    retry_in_s: float | None,
) -> None:
    """The delivery after attempt number `attempt`: succeeded, dead-lettered, or pending again `retry_in_s` later."""
    await conn.execute(
        """UPDATE webhook_deliveries SET
               status = $3, attempt_count = $2, leased_until = NULL, last_status_code = $4, last_error = $5,
               next_attempt_at = CASE WHEN $6::float8 IS NULL THEN next_attempt_at
                                      ELSE now() + make_interval(secs => $6::float8) END,
               delivered_at = CASE WHEN $3 = 'succeeded' THEN now() ELSE delivered_at END,
               dead_lettered_at = CASE WHEN $3 = 'dead_lettered' THEN now() ELSE dead_lettered_at END,
               updated_at = now()
           WHERE delivery_id = $1""",
        delivery_id,
        attempt,
        status,
        status_code,
        error,
        retry_in_s,
    )


async def dead_letter_unsent(conn: asyncpg.Connection, delivery_id: UUID, reason: str) -> None:
    """Dead-letter a delivery without an attempt (its webhook was disabled meanwhile)."""
    await conn.execute(
        """UPDATE webhook_deliveries SET status = 'dead_lettered', dead_lettered_at = now(), leased_until = NULL,
               last_error = $2, updated_at = now() WHERE delivery_id = $1""",
        delivery_id,
        reason,
    )


async def webhook_succeeded(conn: asyncpg.Connection, webhook_id: UUID) -> None:
    await conn.execute(
        """UPDATE webhooks SET consecutive_dead_letters = 0, last_delivery_at = now(), last_success_at = now()
           WHERE webhook_id = $1""",
        webhook_id,
    )


async def webhook_attempted(conn: asyncpg.Connection, webhook_id: UUID) -> None:
    await conn.execute("UPDATE webhooks SET last_delivery_at = now() WHERE webhook_id = $1", webhook_id)


async def webhook_dead_lettered(conn: asyncpg.Connection, webhook_id: UUID, disable_after: int) -> bool:
    """Count a dead letter against the webhook; at `disable_after` in a row (0: never) an active webhook is
    disabled, saying why. Whether this dead letter disabled it.

    The row is read under its lock first: deliveries dead-lettered at the same moment each wait for the one before
    and see its count (one UPDATE computing the decision from a CTE would see the count as of its own start)."""
    current = await conn.fetchrow(
        "SELECT status, consecutive_dead_letters FROM webhooks WHERE webhook_id = $1 FOR UPDATE", webhook_id
    )
    if current is None:
        return False
    count = current["consecutive_dead_letters"] + 1
    disabling = disable_after > 0 and count >= disable_after and current["status"] == "active"
    await conn.execute(
        """UPDATE webhooks SET consecutive_dead_letters = $2, last_delivery_at = now(),
               status = CASE WHEN $3 THEN 'disabled' ELSE status END,
               disabled_reason = CASE WHEN $3
                                      THEN format('disabled after %s dead-lettered deliveries in a row', $2::integer)
                                      ELSE disabled_reason END,
               version = version + CASE WHEN $3 THEN 1 ELSE 0 END,
               updated_at = CASE WHEN $3 THEN now() ELSE updated_at END
           WHERE webhook_id = $1""",
        webhook_id,
        count,
        disabling,
    )
    return disabling


async def delivery(conn: asyncpg.Connection, delivery_id: UUID) -> dict[str, Any] | None:
    """A delivery with its body and its newest attempts (oldest first)."""
    row = await conn.fetchrow(
        f"SELECT {DELIVERY_COLUMNS}, payload FROM webhook_deliveries WHERE delivery_id = $1",  # noqa: S608
        delivery_id,
    )
    if row is None:
        return None
    attempts = await conn.fetch(
        f"SELECT {ATTEMPT_COLUMNS} FROM webhook_delivery_attempts WHERE delivery_id = $1 "  # noqa: S608
        "ORDER BY attempt DESC LIMIT $2",
        delivery_id,
        MAX_ATTEMPTS_SHOWN,
    )
    return {**dict(row), "attempts": [dict(a) for a in reversed(attempts)]}


async def delivery_status(conn: asyncpg.Connection, delivery_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT d.status, d.attempt_count, w.status AS webhook_status
           FROM webhook_deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
           WHERE d.delivery_id = $1 FOR UPDATE OF d""",
        delivery_id,
    )
    return row


async def reopen(conn: asyncpg.Connection, delivery_ids: list[UUID]) -> list[asyncpg.Record]:
    """Make finished deliveries pending again, due now, with a whole round of attempts; returns (delivery_id,
    attempt_count) of each."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """UPDATE webhook_deliveries SET status = 'pending', attempt_base = attempt_count,
               redeliveries = redeliveries + 1, next_attempt_at = now(), leased_until = NULL, swept_at = NULL,
               updated_at = now()
           WHERE delivery_id = ANY($1::uuid[]) AND status <> 'pending'
           RETURNING delivery_id, attempt_count""",
        delivery_ids,
    )
    return rows


async def dead_lettered_of(
    conn: asyncpg.Connection, webhook_id: UUID, since: datetime | None, limit: int
) -> list[UUID]:
    """The webhook's dead-lettered deliveries (since a time), oldest first, locked."""
    rows = await conn.fetch(
        """SELECT delivery_id FROM webhook_deliveries
           WHERE webhook_id = $1 AND status = 'dead_lettered' AND ($2::timestamptz IS NULL OR created_at >= $2)
           ORDER BY created_at, delivery_id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        webhook_id,
        since,
        limit,
    )
    return [r["delivery_id"] for r in rows]


async def sweep_due(grace_s: float, limit: int) -> list[asyncpg.Record]:
    """Across tenants: pending deliveries more than `grace_s` past due, not in flight and not swept within
    `grace_s` (their queue message was lost), marked swept; (tenant_id, delivery_id, attempt_count) of each."""
    return await db.fetch(
        """UPDATE webhook_deliveries SET swept_at = now()
           WHERE (tenant_id, delivery_id) IN (
               SELECT tenant_id, delivery_id FROM webhook_deliveries
               WHERE status = 'pending' AND next_attempt_at < now() - make_interval(secs => $1)
                 AND (leased_until IS NULL OR leased_until < now())
                 AND (swept_at IS NULL OR swept_at < now() - make_interval(secs => $1))
               ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING tenant_id, delivery_id, attempt_count""",
        grace_s,
        limit,
    )
