"""Outbound webhooks' settings (operators change them through STRATA_WEBHOOK_* variables)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator

from strata.config import Settings


def parse_schedule(text: str) -> tuple[float, ...]:
    """`"30,120,600"` -> (30.0, 120.0, 600.0): seconds to wait after the 1st, 2nd, 3rd... failed attempt; ValueError
    for anything else (an empty list, a negative or non-numeric entry)."""
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"the backoff schedule must be comma-separated seconds, not {text!r}") from None
    if not delays or any(not 0 <= d <= 86_400 for d in delays):
        raise ValueError(f"each backoff must be between 0 and 86400 seconds: {text!r}")
    return delays


class WebhookSettings(Settings):
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts a delivery gets (then it is dead-lettered); a redelivery as many"
    )
    webhook_backoff_s: str = Field(
        default="30,120,600,1800,7200,21600,43200",
        description="Seconds after the 1st, 2nd... failed attempt (the last repeats): about 20 h in all by default",
    )
    webhook_backoff_jitter: float = Field(
        default=0.1, ge=0, le=1, description="Each wait is spread by up to this fraction, so retries do not stampede"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60, description="An attempt's whole exchange at most")
    webhook_response_excerpt_bytes: int = Field(
        default=1024, ge=0, le=65_536, description="How much of a receiver's answer an attempt keeps"
    )
    webhook_private_hosts: str = Field(
        default="",
        description="Comma-separated hosts (host or host:port) webhooks may reach although they resolve to private "
        "addresses: local development and tests only",
    )
    webhook_allow_http: bool = Field(default=False, description="Accept http:// webhook URLs (else https:// only)")
    webhook_disable_after_dead_letters: int = Field(
        default=5, ge=0, description="Disable a webhook after this many dead letters in a row (0: never)"
    )
    webhook_max_per_tenant: int = Field(default=50, ge=1, le=10_000)
    webhook_sweep_after_s: float = Field(
        default=60.0,
        ge=0,
        description="A pending delivery this long past due and not in flight has lost its queue message: the "
        "sweeper queues it again",
    )
    webhook_sweep_batch: int = Field(default=500, ge=1, le=10_000)
    webhook_delivery_queue_url: str = Field(default="", description="The SQS queue deliveries wait in")

    @field_validator("webhook_backoff_s")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @field_validator("webhook_private_hosts")
    @classmethod
    def _hosts_parse(cls, value: str) -> str:
        from strata.egress import compile_rules, parse_host_list  # aiohttp stays out of the cold start

        compile_rules(parse_host_list(value), wildcards=False)
        return value

    @property
    def backoff_schedule(self) -> tuple[float, ...]:
        return parse_schedule(self.webhook_backoff_s)

    @property
    def private_hosts(self) -> tuple[str, ...]:
        return tuple(entry.strip() for entry in self.webhook_private_hosts.split(",") if entry.strip())


@lru_cache
def webhook_settings() -> WebhookSettings:
    return WebhookSettings()
