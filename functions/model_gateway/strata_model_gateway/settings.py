"""L04's configuration: which provider endpoints exist, the platform's catalogue entries, limits and caching."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from strata.config import Settings


class ProviderConfig(BaseModel):
    """One provider endpoint; catalogue entries name it by `name`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: Literal["ollama", "openai", "bedrock", "embedded"]
    base_url: str | None = None  # ollama, openai
    api_key: str | None = Field(default=None, description="openai: the key itself (prefer api_key_secret_id)")
    api_key_secret_id: str | None = Field(default=None, description="openai: a Secrets Manager secret holding it")
    region: str | None = None  # bedrock
    endpoint_url: str | None = None  # bedrock (tests, VPC endpoints)


class ModelLimits(BaseModel):
    """Per-tenant model rate limits of a tier: requests and tokens per minute."""

    rpm: int = Field(ge=1)
    tpm: int = Field(ge=1)


DEFAULT_MODEL_LIMITS = {
    "free": ModelLimits(rpm=20, tpm=20_000),
    "standard": ModelLimits(rpm=600, tpm=1_000_000),
    "enterprise": ModelLimits(rpm=6000, tpm=10_000_000),
}


class GatewaySettings(Settings):
    model_providers: str = Field(default="", description="JSON list of ProviderConfig")
    model_catalogue: str = Field(default="", description="JSON list of platform catalogue entries (every tenant's)")
    model_limits: str = Field(default="", description="JSON: tier -> {rpm, tpm}, over the defaults")
    embedded_model_enabled: bool = Field(default=True, description="Offer the embedded model when it is installed")
    model_max_attempts: int = Field(default=3, ge=1, le=10, description="Models tried per request, in order")
    model_retries: int = Field(default=1, ge=0, le=5, description="Extra tries of one model on a retryable error")
    model_retry_base_s: float = Field(default=0.2, ge=0)
    model_timeout_s: float = Field(default=60.0, gt=0)
    model_default_max_tokens: int = Field(default=1024, ge=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)
    answer_cache_ttl_s: int = Field(default=3600, ge=0, description="0 turns the exact-match cache off")
    semantic_cache_model: str = Field(default="", description="Catalogue name of an embeddings model; empty: off")
    semantic_cache_threshold: float = Field(default=0.95, gt=0, le=1)


@lru_cache
def settings() -> GatewaySettings:
    return GatewaySettings()


@lru_cache
def provider_configs() -> tuple[ProviderConfig, ...]:
    raw = settings().model_providers.strip()
    return tuple(TypeAdapter(list[ProviderConfig]).validate_python(json.loads(raw))) if raw else ()


@lru_cache
def model_limits() -> dict[str, ModelLimits]:
    raw = settings().model_limits.strip()
    extra = {k: ModelLimits.model_validate(v) for k, v in json.loads(raw).items()} if raw else {}
    return {**DEFAULT_MODEL_LIMITS, **extra}


def limits_for(tier: str) -> ModelLimits:
    table = model_limits()
    return table.get(tier) or table["standard"]
