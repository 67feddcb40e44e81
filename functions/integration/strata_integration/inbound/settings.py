"""Limits of inbound webhook endpoints (operators change them through STRATA_INBOUND_* variables)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from strata.config import Settings


class InboundSettings(Settings):
    inbound_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="A delivery's body at most (the platform's max_body_bytes also holds)"
    )
    inbound_rps: float = Field(default=10.0, gt=0, description="Verified deliveries per second an endpoint takes")
    inbound_burst: int = Field(default=50, ge=1, description="Verified deliveries an endpoint takes at once")
    inbound_rejected_rps: float = Field(
        default=1.0, gt=0, description="Rejected deliveries per second an endpoint records (more are answered only)"
    )
    inbound_rejected_burst: int = Field(default=20, ge=1)
    inbound_rejected_kept: int = Field(
        default=1000, ge=10, description="Rejected deliveries kept per endpoint (the newest; older ones go)"
    )
    inbound_claim_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a delivery being turned into a goal holds off a duplicate (then another may take over)",
    )


@lru_cache
def inbound_settings() -> InboundSettings:
    return InboundSettings()
