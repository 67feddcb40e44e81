"""Settings shared by every function; each function extends `Settings` with its own."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration read from the environment (Lambda variables, or the local cloud's)."""

    model_config = SettingsConfigDict(env_prefix="STRATA_", extra="ignore", frozen=True)

    service_name: str = Field(default="strata", validation_alias="POWERTOOLS_SERVICE_NAME")
    stage: str = "dev"
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:5432/strata", validation_alias="DATABASE_URL")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    db_pool_max_size: int = Field(default=4, ge=1, le=50)
    db_command_timeout_s: float = Field(default=10.0, gt=0)
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    event_bus_name: str = "strata"
    event_source: str = "strata"
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")
    api_base_url: str = ""
    api_base_url_parameter: str = ""
    peer_timeout_s: float = Field(default=10.0, gt=0)
    # a layer whose calls fail this many times in a row is not called for `peer_breaker_open_s` (one probe then)
    peer_breaker_failures: int = Field(default=5, ge=1)
    peer_breaker_open_s: float = Field(default=30.0, gt=0)
    # how long an execution environment trusts a breaker it saw closed without asking Redis again
    peer_breaker_trust_s: float = Field(default=1.0, ge=0)
    service_token_secret: SecretStr = SecretStr("")
    service_token_secret_id: str = ""
    service_token_ttl_s: int = Field(default=300, ge=10, le=3600)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_header_bytes: int = Field(default=8192, ge=1024, description="All request header names and values")
    max_json_depth: int = Field(default=32, ge=2, le=512, description="Nesting of arrays and objects in a body")
    outbox_sweep_after_s: float = Field(default=5.0, ge=0)
    rate_limit_tiers: str = Field(default="", description="JSON: tier name -> key_rps, key_burst, tenant_rps, ...")
    rate_limit_fail_open: bool = Field(default=True, description="When Redis is unreachable: admit (True) or 503")
    decision_cache_s: float = Field(
        default=5.0, ge=0, le=300, description="How long a policy decision answers identical requests (0: never)"
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached for the life of the execution environment)."""
    return Settings()


def service_token_secret() -> str:
    """The HMAC key of service tokens: from the environment, else from Secrets Manager (cached 5 minutes)."""
    settings = get_settings()
    if settings.service_token_secret.get_secret_value():
        return settings.service_token_secret.get_secret_value()
    if not settings.service_token_secret_id:
        return ""
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(settings.service_token_secret_id, max_age=300))


def api_base_url() -> str:
    """The public API's base URL: from the environment, else from its SSM parameter (cached 5 minutes)."""
    settings = get_settings()
    if settings.api_base_url:
        return settings.api_base_url
    if not settings.api_base_url_parameter:
        raise RuntimeError("set STRATA_API_BASE_URL or STRATA_API_BASE_URL_PARAMETER")
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(settings.api_base_url_parameter, max_age=300))
