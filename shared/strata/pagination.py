"""Keyset (cursor) pagination over a tenant's rows, newest first: stable under inserts, O(limit) per page."""

import base64
import json
from datetime import datetime
from typing import Annotated, Any, Generic, Self, TypeVar
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


def encode_values(values: list[Any]) -> str:
    """An opaque cursor holding the sort key of a page's last item (JSON values; datetimes as ISO text)."""
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values], default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_values(cursor: str, count: int) -> list[Any]:
    """The `count` values `encode_values` put in the cursor; 400 for anything this API did not issue."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadRequestError("the cursor is not one this API issued") from exc
    if not isinstance(values, list) or len(values) != count:
        raise BadRequestError("the cursor is not one this API issued")
    return values


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), UUID(row_id)
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadRequestError("the cursor is not one this API issued") from exc


def encode_position_cursor(position: int) -> str:
    """The cursor after `position` in a list ordered by a descending integer (a version number)."""
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode().rstrip("=")


def decode_position_cursor(cursor: str) -> int:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["after"]
    except (ValueError, TypeError, KeyError) as exc:
        raise BadRequestError("the cursor is not one this API issued") from exc
    if not isinstance(position, int) or isinstance(position, bool):
        raise BadRequestError("the cursor is not one this API issued")
    return position


def position_before(request: PageRequest) -> int | None:
    """The position a page must start below (from its cursor); None for the first page."""
    return decode_position_cursor(request.cursor) if request.cursor else None


def page_of(
    rows: list[dict[str, Any]], request: PageRequest, position_key: str = "version"
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `rows` ordered by `position_key` (an integer) descending, e.g. an entity's versions: the same
    `limit`/`cursor` contract as `fetch_page`. Queries fetch only `position < position_before(request)`, at most
    `request.limit + 1` rows; rows beyond that are cut here too."""
    if request.cursor:
        after = decode_position_cursor(request.cursor)
        rows = [row for row in rows if row[position_key] < after]
    items = rows[: request.limit]
    next_cursor = encode_position_cursor(items[-1][position_key]) if len(rows) > request.limit else None
    return items, next_cursor


class Where:
    """The WHERE clause of a tenant's query, built from fragments whose `{}` become bind parameters."""

    def __init__(self, tenant_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.clauses = ["tenant_id = $1"]
        self.args: list[Any] = [tenant_id]

    def bind(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, fragment: str, *values: Any) -> Self:
        """e.g. `where.add("status = {}", "active")`; a fragment without `{}` is added as it is."""
        self.clauses.append(fragment.format(*(self.bind(v) for v in values)))
        return self

    def add_if(self, value: Any, fragment: str) -> Self:
        """Add `fragment` bound to `value` only when a value was given (optional filters)."""
        return self.add(fragment, value) if value is not None else self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses)


async def fetch_page(
    table: str,
    columns: str,
    id_column: str,
    where: Where | UUID,
    request: PageRequest,
    order_column: str = "created_at",
) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of `table` matching `where` (or all of a tenant's), newest first by (order_column, id), after
    `request.cursor`; `columns` need not name the order column (it is selected either way). Table and column names
    are the caller's constants, never input."""
    where = where if isinstance(where, Where) else Where(where)
    if request.cursor:
        ordered_at, row_id = decode_cursor(request.cursor)
        where.add(f"({order_column}, {id_column}) < ({{}}, {{}})", ordered_at, row_id)
    limit = where.bind(request.limit + 1)
    if order_column not in (c.strip() for c in columns.split(",")):
        columns = f"{columns}, {order_column}"
    rows = await db.fetch(
        f"SELECT {columns} FROM {table} WHERE {where.sql} "  # noqa: S608 - constants and $n only
        f"ORDER BY {order_column} DESC, {id_column} DESC LIMIT {limit}",
        *where.args,
        tenant_id=where.tenant_id,
    )
    items = [dict(r) for r in rows[: request.limit]]
    next_cursor = None
    if len(rows) > request.limit:
        last = items[-1]
        next_cursor = encode_cursor(last[order_column], last[id_column])
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
