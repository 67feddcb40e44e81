"""The audit log: every decision, approval, policy change and suspension, appended to the tenant's hash chain in
the transaction that made it. Each entry's text is canonical JSON (stored verbatim) naming its own sequence number;
its hash is SHA-256 over the previous entry's hash and that text, so changing, removing or reordering any entry
breaks every link after it. With a signing key (from Secrets Manager) each hash is also signed (HMAC-SHA256), so
even someone able to rewrite the whole chain cannot forge it without the key."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from strata import db
from strata_supervision.settings import supervision_settings

GENESIS = "0" * 64
VERIFY_BATCH = 1000


def canonical(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def link(prev_hash: str, text: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


def _signing_key() -> tuple[bytes, str] | None:
    """The signing key and its name, or None when entries are not signed."""
    settings = supervision_settings()
    if settings.audit_signing_key.get_secret_value():
        return settings.audit_signing_key.get_secret_value().encode(), "env"
    if not settings.audit_signing_secret_id:
        return None
    from aws_lambda_powertools.utilities import parameters

    key = str(parameters.get_secret(settings.audit_signing_secret_id, max_age=300))
    return key.encode(), settings.audit_signing_secret_id


def _sign(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


async def append(conn: Any, tenant_id: UUID, kind: str, actor: str, details: dict[str, Any]) -> int:
    """Append an entry in the caller's transaction (its tenant); its sequence number. The chain's head row is
    locked until the transaction ends, so appends of one tenant are serialised and the chain has no forks."""
    head = await conn.fetchrow(
        """INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)
           ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq RETURNING seq, hash""",
        tenant_id,
        GENESIS,
    )
    seq = int(head["seq"]) + 1
    text = canonical(
        {"seq": seq, "kind": kind, "actor": actor, "at": datetime.now(UTC).isoformat(), "details": details}
    )
    digest = link(head["hash"], text)
    key = _signing_key()
    signature, key_id = (_sign(key[0], digest), key[1]) if key is not None else (None, None)
    await conn.execute(
        """WITH moved AS (UPDATE audit_heads SET seq = $2, hash = $5 WHERE tenant_id = $1)
           INSERT INTO audit_log (tenant_id, seq, kind, entry, prev_hash, hash, signature, key_id)
           VALUES ($1, $2, $3, $4, $6, $5, $7, $8)""",
        tenant_id,
        seq,
        kind,
        text,
        digest,
        head["hash"],
        signature,
        key_id,
    )
    return seq


async def verify(tenant_id: UUID) -> dict[str, Any]:
    """Walk the tenant's chain from the start; the first broken link, if any (what is wrong and where)."""
    key = _signing_key()
    expected_prev, expected_seq, checked, signed = GENESIS, 1, 0, 0
    async with db.transaction(tenant_id) as conn:
        head = await conn.fetchrow("SELECT seq, hash FROM audit_heads")
        while True:
            rows = await conn.fetch(
                "SELECT seq, kind, entry, prev_hash, hash, signature, key_id FROM audit_log WHERE seq >= $1 "
                "ORDER BY seq LIMIT $2",
                expected_seq,
                VERIFY_BATCH,
            )
            for row in rows:
                broken = _check(row, expected_seq, expected_prev, key, signed > 0)
                if broken is not None:
                    return {"ok": False, "checked": checked, "signed": signed, "first_broken": broken}
                checked += 1
                signed += row["signature"] is not None
                expected_prev, expected_seq = row["hash"], expected_seq + 1
            if len(rows) < VERIFY_BATCH:
                break
    last = expected_seq - 1
    if head is not None and (head["seq"] != last or head["hash"] != expected_prev):
        broken = {
            "seq": last + 1,
            "problem": f"the chain's head is at entry {head['seq']}; entries after {last} "
            "are missing or the last entry was changed",
        }
        return {"ok": False, "checked": checked, "signed": signed, "first_broken": broken}
    return {"ok": True, "checked": checked, "signed": signed, "first_broken": None}


def _check(row: Any, seq: int, prev: str, key: tuple[bytes, str] | None, signed_before: bool) -> dict[str, Any] | None:
    def broken(problem: str) -> dict[str, Any]:
        return {"seq": seq, "problem": problem}

    if row["seq"] != seq:
        return broken(f"entry {seq} is missing (the next entry is {row['seq']})")
    if row["prev_hash"] != prev:
        return broken("its previous-hash does not match the entry before it")
    try:
        named = json.loads(row["entry"]).get("seq")
    except ValueError:
        return broken("its text is not JSON")
    if named != seq:
        return broken(f"its text names entry {named}: it was moved")
    if link(prev, row["entry"]) != row["hash"]:
        return broken("its text does not hash to its recorded hash: it was changed")
    checkable = row["signature"] is not None and key is not None and row["key_id"] == key[1]
    if checkable and not hmac.compare_digest(_sign(key[0], row["hash"]), row["signature"]):  # type: ignore[index]
        return broken("its signature does not verify")
    if row["signature"] is None and key is not None and signed_before:
        return broken("it is unsigned though the entries before it are signed: its signature was removed")
    return None


async def entries(tenant_id: UUID, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Entries newest first, below `before` (a sequence number)."""
    rows = await db.fetch(
        "SELECT seq, kind, entry, prev_hash, hash, signature, key_id, created_at FROM audit_log "
        "WHERE ($1::bigint IS NULL OR seq < $1) ORDER BY seq DESC LIMIT $2",
        before,
        limit,
        tenant_id=tenant_id,
    )
    return [{**dict(r), "entry": json.loads(r["entry"])} for r in rows]
