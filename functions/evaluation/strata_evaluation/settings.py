"""How evaluation scores: the function's settings (from the environment) and each tenant's evaluation settings
(quality weights and targets, the judge, anomaly detection), stored per tenant and validated on change."""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from strata import db
from strata.config import Settings
from strata.errors import InvalidInputError
from strata.etags import check_version

DIMENSIONS = ("accuracy", "latency", "cost", "reliability", "compliance")
Metric = Annotated[str, Field(pattern=r"^task\.(duration_ms|cost_micro_usd|tokens|score)$")]


class EvaluationSettings(Settings):
    evaluation_judge_timeout_s: float = Field(default=120.0, gt=0, le=900, description="A judge's model call")
    evaluation_judge_max_tokens: int = Field(default=400, ge=50, le=8192)
    evaluation_snapshot_interval_s: float = Field(
        default=60.0, ge=0, description="Least time between two stored quality scores of one subject"
    )
    evaluation_settings_cache_s: float = Field(
        default=10.0, ge=0, description="How long scoring uses a tenant's settings before reading them again"
    )
    evaluation_series_max_points: int = Field(
        default=20_000, ge=1, le=200_000, description="Most points one quality series answer holds (else a 400)"
    )


@lru_cache
def evaluation_settings() -> EvaluationSettings:
    return EvaluationSettings()


class Weights(BaseModel):
    """How much each dimension counts in a quality score; they must sum to 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    accuracy: float = Field(default=0.30, ge=0, le=1, description="Mean task score (checks and judge)")
    latency: float = Field(default=0.25, ge=0, le=1, description="p95 task duration against the targets")
    cost: float = Field(default=0.15, ge=0, le=1, description="Mean task cost against the budget")
    reliability: float = Field(default=0.20, ge=0, le=1, description="Share of task attempts that succeeded")
    compliance: float = Field(default=0.10, ge=0, le=1, description="Share of tasks with no denied tool call")

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = sum(getattr(self, d) for d in DIMENSIONS)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"the weights sum to {total:.6g}; they must sum to 1")
        return self


class Targets(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    latency_target_ms: float = Field(default=5_000, gt=0, description="p95 at or under this scores 1")
    latency_max_ms: float = Field(default=30_000, gt=0, description="p95 at or over this scores 0")
    cost_budget_micro_usd: int = Field(default=1_000_000, gt=0, description="Mean task cost at this scores 0")
    reliability_target: float = Field(default=0.99, gt=0, le=1, description="A success rate at or over this scores 1")
    reliability_floor: float = Field(default=0.90, ge=0, lt=1, description="A success rate at or under this scores 0")

    @model_validator(mode="after")
    def _ordered(self) -> Targets:
        if self.latency_max_ms <= self.latency_target_ms:
            raise ValueError("latency_max_ms must be above latency_target_ms")
        if self.reliability_floor >= self.reliability_target:
            raise ValueError("reliability_floor must be below reliability_target")
        return self


class Anomalies(BaseModel):
    """A sample is anomalous when it is at least `z_warning` standard deviations from its rolling baseline and
    outside the baseline's IQR fences (Q1 - k*IQR, Q3 + k*IQR): both tests must agree, so one noisy statistic
    cannot raise an alert alone."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    metrics: list[Metric] = Field(
        default_factory=lambda: ["task.duration_ms", "task.cost_micro_usd", "task.score"], max_length=4
    )
    window_s: int = Field(default=86_400, ge=60, le=30 * 86_400, description="The baseline's rolling window")
    min_samples: int = Field(default=30, ge=5, le=10_000, description="No verdict on a smaller baseline")
    max_samples: int = Field(default=1000, ge=10, le=10_000, description="The newest samples the baseline keeps")
    z_warning: float = Field(default=3.0, gt=0, le=20)
    z_critical: float = Field(default=4.0, gt=0, le=20)
    iqr_k: float = Field(default=1.5, gt=0, le=10)
    throttle_s: int = Field(default=300, ge=0, le=86_400, description="Least time between two alerts of one series")

    @model_validator(mode="after")
    def _ordered(self) -> Anomalies:
        if self.z_critical < self.z_warning:
            raise ValueError("z_critical must be at least z_warning")
        if self.max_samples < self.min_samples:
            raise ValueError("max_samples must be at least min_samples")
        return self


class TenantEvaluationSettings(BaseModel):
    """A tenant's evaluation settings (each part optional on change; what is left out keeps its value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    weights: Weights = Weights()
    targets: Targets = Targets()
    window_s: int = Field(default=86_400, ge=60, le=90 * 86_400, description="The quality score's rolling window")
    min_samples: int = Field(default=10, ge=1, le=10_000, description="Samples for a full-confidence score")
    judge: Literal["rubric", "always", "never"] = Field(
        default="rubric",
        description="Which agent tasks the LLM judge scores: those whose plan gives a rubric, all of them (the "
        "default rubric where none is given), or none",
    )
    judge_model: str | None = Field(
        default=None, max_length=200, description="A catalogue model for the judge; null: the gateway routes"
    )
    default_rubric: str = Field(
        default="The output does what the task asked, completely and correctly, without invented facts.",
        max_length=5000,
    )
    pass_score: float = Field(default=0.6, ge=0, le=1, description="A judged task passes at or over this score")
    anomalies: Anomalies = Anomalies()


async def of_tenant(tenant_id: UUID) -> tuple[TenantEvaluationSettings, int]:
    """The tenant's settings and their version (0: never changed, the defaults)."""
    rows = await db.fetch("SELECT settings, version FROM evaluation_settings", tenant_id=tenant_id)
    if not rows:
        return TenantEvaluationSettings(), 0
    return TenantEvaluationSettings.model_validate(rows[0]["settings"]), int(rows[0]["version"])


_cached: dict[UUID, tuple[float, TenantEvaluationSettings]] = {}


async def for_scoring(tenant_id: UUID) -> TenantEvaluationSettings:
    """The tenant's settings as scoring uses them: read at most every `evaluation_settings_cache_s` per execution
    environment (a change reaches scoring within that time)."""
    now = time.monotonic()
    held = _cached.get(tenant_id)
    if held is not None and now - held[0] < evaluation_settings().evaluation_settings_cache_s:
        return held[1]
    found, _ = await of_tenant(tenant_id)
    if len(_cached) > 10_000:
        _cached.clear()
    _cached[tenant_id] = (now, found)
    return found


async def change(
    tenant_id: UUID, changes: dict[str, Any], expected: int | None, by: str
) -> tuple[TenantEvaluationSettings, int]:
    """Merge `changes` (top-level parts; a nested part is merged too) into the tenant's settings, validated as a
    whole (422 when the result is not valid); If-Match honoured (version 0: the defaults)."""
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow("SELECT settings, version FROM evaluation_settings FOR UPDATE")
        current = TenantEvaluationSettings.model_validate(row["settings"]) if row else TenantEvaluationSettings()
        version = int(row["version"]) if row else 0
        check_version(expected, version)
        merged = current.model_dump(mode="json")
        for key, value in changes.items():
            merged[key] = {**merged[key], **value} if isinstance(value, dict) and key != "weights" else value
        try:
            updated = TenantEvaluationSettings.model_validate(merged)
        except ValidationError as exc:
            found = [f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()[:20]]
            message = "the evaluation settings are not valid: " + "; ".join(found)
            raise InvalidInputError(message, problems=found) from exc
        await conn.execute(
            """INSERT INTO evaluation_settings (tenant_id, settings, changed_by) VALUES (strata_tenant(), $1, $2)
               ON CONFLICT (tenant_id) DO UPDATE SET settings = $1, changed_by = $2,
                   version = evaluation_settings.version + 1, updated_at = now()""",
            updated.model_dump(mode="json"),
            by,
        )
    return updated, version + 1
