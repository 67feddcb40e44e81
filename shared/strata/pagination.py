"""Keyset (cursor) pagination over a tenant's rows, newest first: stable under inserts, O(limit) per page."""

import base64
import json
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from fastapi import Depends, Query
from pydantic import BaseModel

from strata import db
from strata.auth import Principal
from strata.errors import BadRequestError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of results; pass `next_cursor` back as `cursor` for the next one."""

    items: list[T]
    next_cursor: str | None = None


class PageRequest(BaseModel):
    limit: int = 50
    cursor: str | None = None


def page_request(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="The previous page's next_cursor")] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), UUID(row_id)
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadRequestError("the cursor is not one this API issued") from exc


async def fetch_page(
    table: str, columns: str, id_column: str, tenant_id: UUID, request: PageRequest
) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of `table` for `tenant_id` ordered by (created_at, id) descending, after `request.cursor`."""
    args: list[Any] = [tenant_id, request.limit + 1]
    after = ""
    if request.cursor:
        created_at, row_id = decode_cursor(request.cursor)
        args += [created_at, row_id]
        after = f"AND (created_at, {id_column}) < ($3, $4)"
    rows = await db.fetch(
        f"SELECT {columns}, created_at FROM {table} WHERE tenant_id = $1 {after} "  # noqa: S608 - identifiers are constants
        f"ORDER BY created_at DESC, {id_column} DESC LIMIT $2",
        *args,
        tenant_id=tenant_id,
    )
    items = [dict(r) for r in rows[: request.limit]]
    next_cursor = None
    if len(rows) > request.limit:
        last = items[-1]
        next_cursor = encode_cursor(last["created_at"], last[id_column])
    return items, next_cursor


def add_list_route(
    router: Any,
    path: str,
    item_model: type[BaseModel],
    *,
    table: str,
    id_column: str,
    scope: str,
    summary: str,
) -> None:
    """Register `GET path`: the caller's tenant's rows of `table`, newest first, cursor paginated."""
    from strata.web import require_scope  # web builds apps; imported here so pagination stays a leaf module

    columns = ", ".join(name for name in item_model.model_fields if name != "created_at")

    async def list_items(
        principal: Annotated[Principal, Depends(require_scope(scope))],
        page: Annotated[PageRequest, Depends(page_request)],
    ) -> dict[str, Any]:
        items, next_cursor = await fetch_page(table, columns, id_column, principal.tenant_id, page)
        return {"items": items, "next_cursor": next_cursor}

    list_items.__doc__ = summary
    router.add_api_route(
        path,
        list_items,
        methods=["GET"],
        response_model=Page[item_model],  # type: ignore[valid-type]  # a model chosen at route-building time
        summary=summary,
        name=f"list_{table}",
    )
