"""Namespaced configuration: put (create or replace, If-Match / If-None-Match honoured), read, list, history, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, field_validator

from strata.auth import Principal
from strata.errors import BadRequestError
from strata.etags import expected_version, set_etag
from strata.pagination import Page, PageRequest, page_of, page_request, position_before
from strata.web import require_scope
from strata_data import configurations
from strata_data.configurations import KEY_PATTERN, MAX_VALUE_BYTES, NAMESPACE_PATTERN

router = APIRouter(tags=["configurations"])
Namespace = Annotated[str, Path(pattern=NAMESPACE_PATTERN, description="e.g. billing or feature-flags.v2")]
Key = Annotated[str, Path(pattern=KEY_PATTERN, description="e.g. max_retries or region:eu-west-1")]


class Configuration(BaseModel):
    configuration_id: UUID
    namespace: str
    key: str
    value: Any
    version: int
    created_at: datetime
    updated_at: datetime


class ConfigurationPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any

    @field_validator("value")
    @classmethod
    def _fits(cls, value: Any) -> Any:
        configurations.dump_json(value, MAX_VALUE_BYTES)  # ValueError (so 422) when it is too big or not storable
        return value


class ConfigurationVersion(BaseModel):
    version: int
    value: Any
    deleted: bool
    created_at: datetime


def _create_only(request: Request) -> bool:
    """`If-None-Match: *` makes a put create-only; no other form of the header is meaningful here."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    if header.strip() != "*":
        raise BadRequestError(f"If-None-Match may only be * (create only if absent); got {header!r}")
    return True


@router.get("/v1/configurations", response_model=Page[Configuration], summary="List live configuration entries.")
async def list_configurations(
    principal: Annotated[Principal, Depends(require_scope("config:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
    namespace: Annotated[str | None, Query(pattern=NAMESPACE_PATTERN)] = None,
    key_prefix: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> dict[str, Any]:
    """List live configuration entries."""
    items, next_cursor = await configurations.list_page(principal.tenant_id, page, namespace, key_prefix)
    return {"items": items, "next_cursor": next_cursor}


@router.put(
    "/v1/configurations/{namespace}/{key}",
    response_model=Configuration,
    responses={201: {"model": Configuration, "description": "Created"}},
    summary="Create or replace a configuration entry (If-Match / If-None-Match honoured).",
)
async def put_configuration(
    namespace: Namespace,
    key: Key,
    body: ConfigurationPut,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("config:write"))],
) -> dict[str, Any]:
    """Create or replace a configuration entry (If-Match / If-None-Match honoured)."""
    entry, created = await configurations.put(
        principal.tenant_id,
        namespace,
        key,
        body.value,
        expected_version=expected_version(request),
        must_exist="if-match" in request.headers,
        create_only=_create_only(request),
        correlation_id=request.state.correlation_id,
    )
    set_etag(response, entry["version"])
    if created:
        response.status_code = 201
        response.headers["Location"] = f"/v1/configurations/{namespace}/{key}"
    return entry


@router.get("/v1/configurations/{namespace}/{key}", response_model=Configuration, summary="Read a configuration entry.")
async def get_configuration(
    namespace: Namespace,
    key: Key,
    response: Response,
    principal: Annotated[Principal, Depends(require_scope("config:read"))],
) -> dict[str, Any]:
    """Read a configuration entry."""
    entry = await configurations.get(principal.tenant_id, namespace, key)
    set_etag(response, entry["version"])
    return entry


@router.delete(
    "/v1/configurations/{namespace}/{key}",
    status_code=204,
    summary="Delete a configuration entry (soft; If-Match honoured).",
)
async def delete_configuration(
    namespace: Namespace,
    key: Key,
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("config:write"))],
) -> None:
    """Delete a configuration entry (soft; If-Match honoured)."""
    await configurations.delete(
        principal.tenant_id, namespace, key, expected_version(request), request.state.correlation_id
    )


@router.get(
    "/v1/configurations/{namespace}/{key}/versions",
    response_model=Page[ConfigurationVersion],
    summary="A configuration entry's versions, newest first.",
)
async def list_configuration_versions(
    namespace: Namespace,
    key: Key,
    principal: Annotated[Principal, Depends(require_scope("config:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """A configuration entry's versions, newest first."""
    rows = await configurations.versions(principal.tenant_id, namespace, key, position_before(page), page.limit + 1)
    items, next_cursor = page_of(rows, page)
    return {"items": items, "next_cursor": next_cursor}
