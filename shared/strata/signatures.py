"""Webhook signatures: Strata's own scheme (outbound deliveries, and inbound endpoints that choose it), GitHub's
and Slack's. Every check is constant-time and, where the scheme carries a timestamp, bounded by a replay window.

Strata's scheme (as Stripe's): `Strata-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` where each `v1` is
HMAC-SHA256(secret, f"{t}.{body}"). While a secret is being rotated the sender signs with the new and the old
secret, so a receiver holding either accepts the delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

STRATA_HEADER = "strata-signature"
GITHUB_HEADER = "x-hub-signature-256"
SLACK_HEADER = "x-slack-signature"
SLACK_TIMESTAMP_HEADER = "x-slack-request-timestamp"
REPLAY_WINDOW_S = 300  # how far a signed timestamp may be from the receiver's clock


class SignatureError(ValueError):
    """The request is not signed, is signed wrongly, or is outside the replay window (the reason says which)."""


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _any_matches(candidates: Iterable[str], expected: Iterable[str]) -> bool:
    wanted = list(expected)
    return any(hmac.compare_digest(c, e) for c in candidates for e in wanted)


def _fresh(timestamp: str, now: float | None, window_s: int) -> None:
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise SignatureError("the signature's timestamp is not a number") from None
    if abs((time.time() if now is None else now) - signed_at) > window_s:
        raise SignatureError(f"the signature's timestamp is more than {window_s} s from now (a replay?)")


def strata_signature(secrets: Iterable[str], body: bytes, timestamp: int | None = None) -> str:
    """The `Strata-Signature` header value for `body`, one `v1` per secret (current first)."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + body
    return ",".join([f"t={t}", *(f"v1={_hmac(secret, signed)}" for secret in secrets)])


def verify_strata(
    header: str | None,
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float | None = None,
    window_s: int = REPLAY_WINDOW_S,
) -> None:
    """Check a `Strata-Signature` header against any of `secrets`; raises SignatureError."""
    if not header:
        raise SignatureError("the Strata-Signature header is missing")
    parts = [p.strip().partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k == "t"]
    given = [v for k, _, v in parts if k == "v1"]
    if len(stamps) != 1 or not given:
        raise SignatureError("the Strata-Signature header needs one t= and at least one v1=")
    _fresh(stamps[0], now, window_s)
    signed = f"{stamps[0]}.".encode() + body
    if not _any_matches(given, (_hmac(s, signed) for s in secrets)):
        raise SignatureError("no signature matches")


def verify_github(header: str | None, body: bytes, secrets: Iterable[str]) -> None:
    """GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body (GitHub signs no timestamp)."""
    if not header or not header.startswith("sha256="):
        raise SignatureError("the X-Hub-Signature-256 header is missing or not sha256=")
    if not _any_matches([header.removeprefix("sha256=")], (_hmac(s, body) for s in secrets)):
        raise SignatureError("no signature matches")


def verify_slack(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float | None = None,
    window_s: int = REPLAY_WINDOW_S,
) -> None:
    """Slack's `X-Slack-Signature: v0=<hex>` over `v0:{X-Slack-Request-Timestamp}:{body}`; `headers` in lower case."""
    signature, timestamp = headers.get(SLACK_HEADER), headers.get(SLACK_TIMESTAMP_HEADER)
    if not signature or not signature.startswith("v0=") or not timestamp:
        raise SignatureError("the X-Slack-Signature (v0=) or X-Slack-Request-Timestamp header is missing")
    _fresh(timestamp, now, window_s)
    signed = f"v0:{timestamp}:".encode() + body
    if not _any_matches([signature.removeprefix("v0=")], (_hmac(s, signed) for s in secrets)):
        raise SignatureError("no signature matches")
