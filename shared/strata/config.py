"""Settings shared by every function; each function extends `Settings` with its own."""

from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import quote

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration read from the environment (Lambda variables, or the local cloud's)."""

    model_config = SettingsConfigDict(env_prefix="STRATA_", extra="ignore", frozen=True)

    service_name: str = Field(default="strata", validation_alias="POWERTOOLS_SERVICE_NAME")
    stage: str = "dev"
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:5432/strata", validation_alias="DATABASE_URL")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    # In AWS the database and Redis URLs come from Secrets Manager, not the environment: the secret holds a URL, or
    # (the database's) the JSON RDS keeps in a secret attached to a cluster; `database_host` then replaces its host
    # (an RDS Proxy endpoint). Set, they win over DATABASE_URL and REDIS_URL.
    database_secret_id: str = ""
    database_host: str = ""
    redis_url_secret_id: str = ""
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


def database_url() -> str:
    """The Postgres URL: from the secret `database_secret_id` names when set (cached 5 minutes), else DATABASE_URL."""
    settings = get_settings()
    if not settings.database_secret_id:
        return settings.database_url
    from aws_lambda_powertools.utilities import parameters

    secret = str(parameters.get_secret(settings.database_secret_id, max_age=300))
    return postgres_url_from_secret(secret, host=settings.database_host)


def postgres_url_from_secret(secret: str, host: str = "") -> str:
    """A Postgres URL from a secret's value: a URL as it is, or RDS's JSON (username, password, host, port, dbname;
    `sslmode` defaults to require) with `host`, when given, in place of its own."""
    value = secret.strip()
    if not value.startswith("{"):
        return value
    fields = json.loads(value)
    user, password = quote(str(fields["username"]), safe=""), quote(str(fields["password"]), safe="")
    where = f"{host or fields['host']}:{fields.get('port', 5432)}"
    database = quote(str(fields.get("dbname") or "postgres"), safe="")
    return f"postgresql://{user}:{password}@{where}/{database}?sslmode={fields.get('sslmode', 'require')}"


def redis_url() -> str:
    """The Redis URL: from the secret `redis_url_secret_id` names when set (cached 5 minutes), else REDIS_URL."""
    settings = get_settings()
    if not settings.redis_url_secret_id:
        return settings.redis_url
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(settings.redis_url_secret_id, max_age=300)).strip()


def api_base_url() -> str:
    """The public API's base URL: from the environment, else from its SSM parameter (cached 5 minutes)."""
    settings = get_settings()
    if settings.api_base_url:
        return settings.api_base_url
    if not settings.api_base_url_parameter:
        raise RuntimeError("set STRATA_API_BASE_URL or STRATA_API_BASE_URL_PARAMETER")
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(settings.api_base_url_parameter, max_age=300))
