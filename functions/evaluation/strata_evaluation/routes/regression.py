"""Evaluation datasets (create, read, list, change with If-Match, delete) and regression runs (start one of an agent
over a dataset, compared with a baseline; read it with its per-case diff and gate; list them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_evaluation import datasets, eval_runs
from strata_evaluation.datasets import DatasetFields, EvalCase

router = APIRouter(tags=["regression runs"])
CaseStatus = Literal["pending", "passed", "failed", "error"]


class EvalDataset(BaseModel):
    dataset_id: UUID
    name: str
    description: str
    instructions: str
    output_schema: dict[str, Any] | None
    rubric: str | None
    cases: list[EvalCase]
    version: int
    created_at: datetime
    updated_at: datetime


class EvalDatasetSummary(BaseModel):
    dataset_id: UUID
    name: str
    description: str
    version: int
    case_count: int
    created_at: datetime
    updated_at: datetime


class EvalDatasetCreate(DatasetFields):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


class EvalDatasetChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, max_length=2000)
    instructions: str | None = Field(default=None, max_length=20_000)
    output_schema: dict[str, Any] | None = None
    rubric: str | None = Field(default=None, max_length=5000)
    cases: list[EvalCase] | None = Field(default=None, min_length=1, max_length=datasets.MAX_CASES)


class EvalRunStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset_id: UUID
    agent_id: UUID = Field(description="The agent to run, at the version it has now")
    baseline: UUID | Literal["auto", "none"] = Field(
        default="auto",
        description="A completed regression run of the same dataset to compare with; auto: the newest of this "
        "dataset and agent whose gate passed; none: no comparison",
    )
    max_drop: float = Field(default=0.05, ge=0, le=1, description="How far the score may fall below the baseline's")
    min_score: float | None = Field(default=None, ge=0, le=1, description="A floor the score must reach")
    timeout_s: int = Field(default=3600, ge=10, le=86_400, description="Cases unfinished by then end in error")


class EvalRunCase(BaseModel):
    case_id: str
    position: int
    definition: dict[str, Any] = Field(description="The case as it was run, with the task it ran as")
    goal_id: UUID | None
    run_id: UUID | None
    status: CaseStatus
    score: float | None
    scores: dict[str, float]
    reasons: dict[str, str]
    output: Any
    error: str | None
    cost_micro_usd: int
    finished_at: datetime | None
    baseline_status: CaseStatus | None
    baseline_score: float | None
    change: Literal["regressed", "improved", "unchanged", "new"] | None


class EvalRun(BaseModel):
    eval_run_id: UUID
    dataset_id: UUID
    dataset_version: int
    agent_id: UUID
    agent_version: int
    baseline_id: UUID | None
    max_drop: float
    min_score: float | None
    timeout_s: int
    status: Literal["running", "completed"]
    cases_total: int
    cases_done: int
    score: float | None = Field(description="The mean case score, in [0, 1]")
    pass_rate: float | None
    baseline_score: float | None
    delta: float | None = Field(description="score minus the baseline's")
    gate: Literal["passed", "failed"] | None
    gate_reasons: list[str]
    cost_micro_usd: int
    requested_by: str
    created_at: datetime
    finished_at: datetime | None


class EvalRunDetail(EvalRun):
    cases: list[EvalRunCase]


@router.post("/v1/eval-datasets", status_code=201, response_model=EvalDataset, summary="Create an evaluation dataset.")
async def create_eval_dataset(
    body: EvalDatasetCreate,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("evaluations:write"))],
) -> dict[str, Any]:
    """Create an evaluation dataset (every case must be scorable; case ids unique)."""
    created = await datasets.create(principal.tenant_id, body.name, body)
    set_etag(response, created["version"])
    response.headers["Location"] = f"/v1/eval-datasets/{created['dataset_id']}"
    return created


@router.get("/v1/eval-datasets", response_model=Page[EvalDatasetSummary], summary="List evaluation datasets.")
async def list_eval_datasets(
    principal: Annotated[Principal, Depends(require_scope("evaluations:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """List evaluation datasets, newest first."""
    items, next_cursor = await datasets.list_page(principal.tenant_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/eval-datasets/{eval_dataset_id}", response_model=EvalDataset, summary="Read an evaluation dataset.")
async def get_eval_dataset(
    eval_dataset_id: UUID,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("evaluations:read"))],
) -> dict[str, Any]:
    """Read an evaluation dataset with its cases."""
    found = await datasets.get(principal.tenant_id, eval_dataset_id)
    set_etag(response, found["version"])
    return found


@router.patch(
    "/v1/eval-datasets/{eval_dataset_id}",
    response_model=EvalDataset,
    summary="Change an evaluation dataset (If-Match).",
)
async def change_eval_dataset(
    eval_dataset_id: UUID,
    body: EvalDatasetChange,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("evaluations:write"))],
) -> dict[str, Any]:
    """Change an evaluation dataset (a new version; runs keep the cases they ran)."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    changed = await datasets.change(principal.tenant_id, eval_dataset_id, changes, expected_version(request))
    set_etag(response, changed["version"])
    return changed


@router.delete(
    "/v1/eval-datasets/{eval_dataset_id}", status_code=204, summary="Delete an evaluation dataset (If-Match)."
)
async def delete_eval_dataset(
    eval_dataset_id: UUID,
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("evaluations:write"))],
) -> Response:
    """Delete an evaluation dataset (its regression runs stay)."""
    await datasets.delete(principal.tenant_id, eval_dataset_id, expected_version(request))
    return Response(status_code=204)


@router.post(
    "/v1/eval-runs",
    status_code=202,
    response_model=EvalRun,
    summary="Start a regression run of an agent over a dataset.",
)
async def start_eval_run(
    body: EvalRunStart,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("evaluations:write"))],
) -> dict[str, Any]:
    """Start a regression run: every case runs through the platform, is scored, and is compared with the baseline."""
    started = await eval_runs.start(
        principal.tenant_id,
        request.state.correlation_id,
        principal.principal_id,
        body.dataset_id,
        body.agent_id,
        None if body.baseline == "none" else body.baseline,
        body.max_drop,
        body.min_score,
        body.timeout_s,
    )
    response.headers["Location"] = f"/v1/eval-runs/{started['eval_run_id']}"
    return started


@router.get("/v1/eval-runs", response_model=Page[EvalRun], summary="List regression runs, newest first.")
async def list_eval_runs(
    principal: Annotated[Principal, Depends(require_scope("evaluations:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    dataset_id: UUID | None = None,
    agent_id: UUID | None = None,
) -> dict[str, Any]:
    """List regression runs, newest first (filter by dataset and agent)."""
    items, next_cursor = await eval_runs.list_page(principal.tenant_id, page, dataset_id, agent_id)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/v1/eval-runs/{eval_run_id}",
    response_model=EvalRunDetail,
    summary="A regression run with every case beside its baseline.",
)
async def get_eval_run(
    eval_run_id: UUID, principal: Annotated[Principal, Depends(require_scope("evaluations:read"))]
) -> dict[str, Any]:
    """A regression run: its score, gate and reasons, and every case beside its baseline (the per-case diff)."""
    return await eval_runs.get(principal.tenant_id, eval_run_id)
