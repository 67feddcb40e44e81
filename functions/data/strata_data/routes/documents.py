"""Documents: create, read, full-text search, update with If-Match (each write a new version), soft delete."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_of, page_request, position_before
from strata.web import require_scope
from strata_data import documents

router = APIRouter(tags=["documents"])

RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*"
MEDIA_TYPE = rf"^{RESTRICTED_NAME}/{RESTRICTED_NAME}(\s*;\s*{RESTRICTED_NAME}={RESTRICTED_NAME})*$"
MAX_VERSION = 2_147_483_647  # the column is a Postgres integer


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _storable(value: Any) -> Any:
    """Postgres text and jsonb hold no NUL characters, and jsonb no NaN or Infinity: refuse them as input."""
    if _has_nul(value):
        raise ValueError("NUL characters (\\u0000) cannot be stored")
    if isinstance(value, dict):
        try:
            json.dumps(value, allow_nan=False)
        except ValueError as exc:
            raise ValueError("NaN and Infinity cannot be stored") from exc
    return value


Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)]
Content = Annotated[str, Field(max_length=1_000_000), AfterValidator(_storable)]
ContentType = Annotated[str, Field(min_length=3, max_length=255, pattern=MEDIA_TYPE)]
Metadata = Annotated[dict[str, Any], Field(max_length=50), AfterValidator(_storable)]


class DocumentSummary(BaseModel):
    document_id: UUID
    title: str
    content_type: str
    metadata: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class Document(DocumentSummary):
    content: str


class DocumentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title
    content: Content
    content_type: ContentType = "text/plain"
    metadata: Metadata = Field(default_factory=dict)


class DocumentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title | None = None
    content: Content | None = None
    content_type: ContentType | None = None
    metadata: Metadata | None = None


class VersionSummary(BaseModel):
    version: int
    title: str
    created_at: datetime


class DocumentVersion(BaseModel):
    document_id: UUID
    version: int
    title: str
    content: str
    metadata: dict[str, Any]
    created_at: datetime


@router.get("/v1/documents", response_model=Page[DocumentSummary], summary="List or search the tenant's documents.")
async def list_documents(
    principal: Annotated[Principal, Depends(require_scope("documents:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    q: Annotated[str | None, Query(min_length=1, max_length=500, description="Full-text query (web syntax)")] = None,
    content_type: Annotated[str | None, Query(max_length=255)] = None,
    include_deleted: bool = False,
) -> dict[str, Any]:
    """List or search the tenant's documents."""
    items, next_cursor = await documents.list_documents(principal.tenant_id, page, q, content_type, include_deleted)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/documents", status_code=201, response_model=Document, summary="Create a document.")
async def create_document(
    body: DocumentCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("documents:write"))],
) -> dict[str, Any]:
    """Create a document."""
    document = await documents.create_document(principal.tenant_id, body.model_dump(), request.state.correlation_id)
    set_etag(response, document["version"])
    response.headers["Location"] = f"/v1/documents/{document['document_id']}"
    return document


@router.get("/v1/documents/{document_id}", response_model=Document, summary="Read a document.")
async def get_document(
    document_id: UUID, response: Response, principal: Annotated[Principal, Depends(require_scope("documents:read"))]
) -> dict[str, Any]:
    """Read a document."""
    document = await documents.get_document(principal.tenant_id, document_id)
    set_etag(response, document["version"])
    return document


@router.patch("/v1/documents/{document_id}", response_model=Document, summary="Update a document (If-Match honoured).")
async def update_document(
    document_id: UUID,
    body: DocumentUpdate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("documents:write"))],
) -> dict[str, Any]:
    """Update a document (If-Match honoured)."""
    document = await documents.update_document(
        principal.tenant_id,
        document_id,
        {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None},
        expected_version(request),
        request.state.correlation_id,
    )
    set_etag(response, document["version"])
    return document


@router.delete("/v1/documents/{document_id}", status_code=204, summary="Delete a document (soft; If-Match honoured).")
async def delete_document(
    document_id: UUID, request: Request, principal: Annotated[Principal, Depends(require_scope("documents:write"))]
) -> None:
    """Delete a document (soft; If-Match honoured)."""
    await documents.delete_document(
        principal.tenant_id, document_id, expected_version(request), request.state.correlation_id
    )


@router.get(
    "/v1/documents/{document_id}/versions",
    response_model=Page[VersionSummary],
    summary="List a document's versions.",
)
async def list_versions(
    document_id: UUID,
    principal: Annotated[Principal, Depends(require_scope("documents:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """List a document's versions, newest first."""
    rows = await documents.list_versions(principal.tenant_id, document_id, position_before(page), page.limit + 1)
    items, next_cursor = page_of(rows, page)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/v1/documents/{document_id}/versions/{version}",
    response_model=DocumentVersion,
    summary="Read one version of a document.",
)
async def get_version(
    document_id: UUID,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    principal: Annotated[Principal, Depends(require_scope("documents:read"))],
) -> dict[str, Any]:
    """Read one version of a document."""
    return await documents.get_version(principal.tenant_id, document_id, version)
