"""Training datasets: create one (a filter, split ratios, a seed, a stratum; version 1 is snapshotted at once),
snapshot new versions, read a version's examples by split, export a version for fine-tuning, and submit and follow
Bedrock customisation jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.pagination import Page, PageRequest, page_request
from strata.web import require_scope
from strata_learning import datasets, exports
from strata_learning.datasets import ExampleFilter, Splits

router = APIRouter(tags=["training datasets"])
Split = Literal["train", "validation", "test"]
Version = Annotated[int, Path(ge=1, le=1_000_000)]


class Dataset(BaseModel):
    dataset_id: UUID
    name: str
    description: str
    filter: ExampleFilter
    splits: Splits
    seed: int
    stratify_by: Literal["none", "agent", "label"]
    version: int = Field(description="The newest snapshot")
    counts: dict[str, int] = Field(default_factory=dict, description="The newest snapshot's examples per split")
    created_at: datetime
    updated_at: datetime


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    description: str = Field(default="", max_length=2000)
    filter: ExampleFilter = ExampleFilter()
    splits: Splits = Splits()
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="The same examples and seed split the same way")
    stratify_by: Literal["none", "agent", "label"] = Field(
        default="agent", description="Keep the split ratios within each agent's (or label set's) examples"
    )


class DatasetVersion(BaseModel):
    version: int
    counts: dict[str, int]
    created_by: str
    created_at: datetime


class VersionExample(BaseModel):
    example_id: UUID
    split: Split


class Export(BaseModel):
    export_id: UUID
    dataset_id: UUID
    version: int
    format: Literal["openai_chat", "bedrock_conversation"]
    files: dict[str, dict[str, Any]] = Field(description="Per split: the S3 URI, records, bytes, SHA-256")
    created_by: str
    created_at: datetime


class ExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["openai_chat", "bedrock_conversation"]


class FineTuneJob(BaseModel):
    job_id: UUID
    dataset_id: UUID
    version: int
    export_id: UUID
    provider: Literal["bedrock"]
    job_name: str
    job_arn: str
    base_model: str
    custom_model: str
    status: str = Field(description="As Bedrock reports it: InProgress, Completed, Failed, Stopping, Stopped")
    detail: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime


class FineTuneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_model: str = Field(min_length=1, max_length=2048, description="Bedrock's identifier of the base model")
    custom_model: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$")
    hyperparameters: dict[str, str] = Field(default_factory=dict, max_length=20, description="e.g. epochCount")
    role_arn: str | None = Field(
        default=None, max_length=2048, pattern=r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/.+$",
        description="The role Bedrock reads and writes S3 with; default: the deployment's",
    )  # fmt: skip


@router.post("/v1/datasets", status_code=201, response_model=Dataset, summary="Create a training dataset.")
async def create_dataset(
    body: DatasetCreate,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("learning:write"))],
) -> dict[str, Any]:
    """Create a training dataset; version 1 snapshots the examples its filter takes now, split by its seed."""
    made = await datasets.create(
        principal.tenant_id, principal.principal_id, body.name, body.description, body.filter, body.splits,
        body.seed, body.stratify_by,
    )  # fmt: skip
    response.headers["Location"] = f"/v1/datasets/{made['dataset_id']}"
    return made


@router.get("/v1/datasets", response_model=Page[Dataset], summary="List training datasets.")
async def list_datasets(
    principal: Annotated[Principal, Depends(require_scope("learning:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """List training datasets, newest first."""
    items, next_cursor = await datasets.list_page(principal.tenant_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/datasets/{dataset_id}", response_model=Dataset, summary="Read a training dataset.")
async def get_dataset(
    dataset_id: UUID, principal: Annotated[Principal, Depends(require_scope("learning:read"))]
) -> dict[str, Any]:
    """Read a training dataset with its newest version's counts."""
    return await datasets.get(principal.tenant_id, dataset_id)


@router.delete("/v1/datasets/{dataset_id}", status_code=204, summary="Delete a training dataset.")
async def delete_dataset(
    dataset_id: UUID, principal: Annotated[Principal, Depends(require_scope("learning:write"))]
) -> Response:
    """Delete a training dataset (its exports stay in S3)."""
    await datasets.delete(principal.tenant_id, dataset_id)
    return Response(status_code=204)


@router.post(
    "/v1/datasets/{dataset_id}/versions",
    status_code=201,
    response_model=DatasetVersion,
    summary="Snapshot a new version of a dataset.",
)
async def snapshot_dataset(
    dataset_id: UUID, principal: Annotated[Principal, Depends(require_scope("learning:write"))]
) -> dict[str, Any]:
    """Snapshot the examples the dataset's filter takes now as its next version."""
    return await datasets.new_version(principal.tenant_id, dataset_id, principal.principal_id)


@router.get("/v1/datasets/{dataset_id}/versions", response_model=Page[DatasetVersion], summary="A dataset's versions.")
async def dataset_versions(
    dataset_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("learning:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """A dataset's versions, newest first."""
    items, next_cursor = await datasets.versions(principal.tenant_id, dataset_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/v1/datasets/{dataset_id}/versions/{version}/examples",
    response_model=list[VersionExample],
    summary="A dataset version's examples with their splits.",
)
async def version_examples(
    dataset_id: UUID,
    version: Version,
    principal: Annotated[Principal, Depends(require_scope("learning:read"))],
    split: Split | None = None,
) -> list[dict[str, Any]]:
    """A dataset version's examples with their splits (optionally one split)."""
    await datasets.version_of(principal.tenant_id, dataset_id, version)
    return await datasets.version_members(principal.tenant_id, dataset_id, version, split)


@router.post(
    "/v1/datasets/{dataset_id}/versions/{version}/exports",
    status_code=201,
    response_model=Export,
    summary="Export a dataset version for fine-tuning (JSONL per split in S3).",
)
async def export_version(
    dataset_id: UUID,
    version: Version,
    body: ExportCreate,
    principal: Annotated[Principal, Depends(require_scope("learning:write"))],
) -> dict[str, Any]:
    """Export a dataset version in a fine-tuning format: one JSONL object per split in S3."""
    return await exports.export(principal.tenant_id, dataset_id, version, body.format, principal.principal_id)


@router.get(
    "/v1/datasets/{dataset_id}/exports", response_model=Page[Export], summary="A dataset's exports, newest first."
)
async def list_exports(
    dataset_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("learning:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """A dataset's exports, newest first."""
    items, next_cursor = await exports.exports_of(principal.tenant_id, dataset_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/v1/datasets/{dataset_id}/versions/{version}/fine-tunes",
    status_code=202,
    response_model=FineTuneJob,
    summary="Submit a Bedrock model customisation job for a dataset version.",
)
async def start_fine_tune(
    dataset_id: UUID,
    version: Version,
    body: FineTuneCreate,
    principal: Annotated[Principal, Depends(require_scope("learning:write"))],
) -> dict[str, Any]:
    """Export the version for Bedrock and submit a model customisation job on it."""
    return await exports.start_fine_tune(
        principal.tenant_id, dataset_id, version, principal.principal_id, body.base_model, body.custom_model,
        body.hyperparameters, body.role_arn,
    )  # fmt: skip


@router.get("/v1/fine-tunes", response_model=Page[FineTuneJob], summary="List fine-tuning jobs.")
async def list_fine_tunes(
    principal: Annotated[Principal, Depends(require_scope("learning:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """List fine-tuning jobs, newest first (statuses as last read)."""
    items, next_cursor = await exports.fine_tunes(principal.tenant_id, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/v1/fine-tunes/{job_id}", response_model=FineTuneJob, summary="A fine-tuning job, as Bedrock has it.")
async def get_fine_tune(
    job_id: UUID, principal: Annotated[Principal, Depends(require_scope("learning:read"))]
) -> dict[str, Any]:
    """A fine-tuning job with its status read from Bedrock now."""
    return await exports.fine_tune(principal.tenant_id, job_id)
