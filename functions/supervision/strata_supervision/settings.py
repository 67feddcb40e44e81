"""How supervision signs its audit log and caches what it reads from other layers."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr

from strata.config import Settings


class SupervisionSettings(Settings):
    audit_signing_secret_id: str = Field(
        default="",
        description="Secrets Manager id of the key audit entries are signed with (HMAC-SHA256); empty: unsigned",
    )
    audit_signing_key: SecretStr = Field(
        default=SecretStr(""), description="The signing key itself (tests and the local cloud; wins over the secret)"
    )
    supervision_agent_cache_s: float = Field(
        default=10.0, ge=0, description="How long an agent read from L01 serves decisions naming it as principal"
    )
    approval_expiry_batch: int = Field(default=200, ge=1, le=10_000)


@lru_cache
def supervision_settings() -> SupervisionSettings:
    return SupervisionSettings()
