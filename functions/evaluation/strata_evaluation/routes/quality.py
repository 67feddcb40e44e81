"""Quality: an agent's quality score now (rolling window, weighted dimensions, assessment band), the stored history
of scores and metric series for charts, and the tenant's evaluation settings (weights, targets, judge, anomaly
detection)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from strata.auth import Principal
from strata.errors import BadRequestError
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, Where, fetch_page, page_request
from strata.web import require_scope
from strata_evaluation import quality, settings

router = APIRouter(tags=["quality"])
Assessment = Literal["good", "warning", "critical", "insufficient_data"]


class Dimension(BaseModel):
    score: float = Field(description="In [0, 1]")
    weight: float
    raw: dict[str, float] = Field(description="The figure it was scored from")
    samples: float


class QualityScore(BaseModel):
    subject: str = Field(description="agent:<id> or tool:<name>")
    overall: float = Field(description="0 to 100")
    assessment: Assessment = Field(description="good >= 80, warning >= 60, else critical")
    dimensions: dict[str, Dimension] = Field(description="Only dimensions with samples in the window")
    samples: int
    completeness: float = Field(description="How much of a full score's data there was, 0 to 1")
    window_s: int


class StoredScore(QualityScore):
    score_id: UUID
    computed_at: datetime


def _bare_date(value: Any) -> Any:
    """YYYY-MM-DD is a date (a whole UTC day); anything else is parsed as a datetime."""
    return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else value


Moment = Annotated[datetime | date, BeforeValidator(_bare_date)]


class QualitySeriesPoint(BaseModel):
    at: datetime = Field(description="Start of the UTC hour or day")
    count: int = Field(description="Samples in the bucket")
    sum: float
    avg: float
    p95: float = Field(description="95th percentile, interpolated (percentile_cont)")


class QualitySubjectSeries(BaseModel):
    subject: str = Field(description="agent:<id> or tool:<name>")
    points: list[QualitySeriesPoint] = Field(description="In time order; buckets without samples are left out")


class QualitySeries(BaseModel):
    metric: quality.SeriesName
    bucket: quality.Bucket
    from_: datetime = Field(alias="from", description="Start of the range (inclusive)")
    to: datetime = Field(description="End of the range (exclusive)")
    series: list[QualitySubjectSeries] = Field(description="One per subject with samples, ordered by subject")


class EvaluationSettingsChange(BaseModel):
    """Parts of the settings to change; a part left out keeps its value (weights are given whole)."""

    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float] | None = None
    targets: dict[str, Any] | None = None
    window_s: int | None = None
    min_samples: int | None = None
    judge: Literal["rubric", "always", "never"] | None = None
    judge_model: str | None = Field(default=None, max_length=200)
    default_rubric: str | None = Field(default=None, max_length=5000)
    pass_score: float | None = None
    anomalies: dict[str, Any] | None = None


@router.get("/v1/quality/agents/{agent_id}", response_model=QualityScore, summary="An agent's quality score now.")
async def agent_quality(
    agent_id: UUID, principal: Annotated[Principal, Depends(require_scope("evaluations:read"))]
) -> dict[str, Any]:
    """An agent's quality score over the rolling window: weighted dimensions and an assessment band."""
    current, _ = await settings.of_tenant(principal.tenant_id)
    return await quality.current(principal.tenant_id, f"agent:{agent_id}", current)


@router.get("/v1/quality/scores", response_model=Page[StoredScore], summary="Stored quality scores, newest first.")
async def quality_history(
    principal: Annotated[Principal, Depends(require_scope("evaluations:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    agent_id: UUID | None = None,
) -> dict[str, Any]:
    """Stored quality scores, newest first (one an interval at most per subject): the history charts draw."""
    where = Where(principal.tenant_id).add_if(f"agent:{agent_id}" if agent_id else None, "subject = {}")
    columns = "score_id, subject, overall, assessment, dimensions, samples, completeness, window_s"
    items, next_cursor = await fetch_page("quality_scores", columns, "score_id", where, page, "computed_at")
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/v1/quality/series",
    response_model=QualitySeries,
    response_model_by_alias=True,
    summary="A metric per agent and tool over time, in UTC hour or day buckets.",
)
async def quality_series(
    principal: Annotated[Principal, Depends(require_scope("evaluations:read"))],
    metric: Annotated[quality.SeriesName, Query(description="The metric the samples are of")],
    bucket: Annotated[
        quality.Bucket, Query(description=f"hour buckets: at most {quality.SERIES_MAX_HOUR_DAYS} days per query")
    ] = "day",
    from_: Annotated[
        Moment | None,
        Query(
            alias="from",
            description="Start (a datetime, or a date: its UTC start); default 7 days before `to`, at a bucket start",
        ),
    ] = None,
    to: Annotated[
        Moment | None,
        Query(
            description=f"End, exclusive (a datetime, or a date: up to its UTC end); default now; at most "
            f"{quality.SERIES_MAX_DAYS} days after `from`"
        ),
    ] = None,
    agent_id: Annotated[UUID | None, Query(description="Only this agent's series")] = None,
    subject_kind: Annotated[Literal["agent", "tool"] | None, Query(description="Only agents' or tools' series")] = None,
) -> dict[str, Any]:
    """A metric per agent and tool in UTC buckets: count, sum, avg, p95; anomalous samples included (real spend)."""
    if agent_id is not None and subject_kind not in (None, "agent"):
        raise BadRequestError("agent_id names an agent: subject_kind can only be agent with it")
    start, end = quality.series_window(bucket, from_, to, datetime.now(UTC))
    return await quality.series(
        principal.tenant_id,
        metric,
        bucket,
        start,
        end,
        subject=f"agent:{agent_id}" if agent_id is not None else None,
        subject_prefix=f"{subject_kind}:" if subject_kind is not None else None,
    )


@router.get(
    "/v1/evaluation-settings",
    response_model=settings.TenantEvaluationSettings,
    summary="The tenant's evaluation settings.",
)
async def get_settings(
    response: Response, principal: Annotated[Principal, Depends(require_scope("evaluations:read"))]
) -> settings.TenantEvaluationSettings:
    """The tenant's evaluation settings (the defaults until changed; ETag v0)."""
    current, version = await settings.of_tenant(principal.tenant_id)
    set_etag(response, version)
    return current


@router.patch(
    "/v1/evaluation-settings",
    response_model=settings.TenantEvaluationSettings,
    summary="Change the tenant's evaluation settings (If-Match).",
)
async def change_settings(
    body: EvaluationSettingsChange,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("evaluations:write"))],
) -> settings.TenantEvaluationSettings:
    """Change the tenant's evaluation settings; the result is validated whole (weights must sum to 1)."""
    changes = body.model_dump(exclude_unset=True)
    updated, version = await settings.change(
        principal.tenant_id, changes, expected_version(request), principal.principal_id
    )
    set_etag(response, version)
    return updated
