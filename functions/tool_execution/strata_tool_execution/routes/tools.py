"""Tool resources of L03 tool execution."""

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from strata.pagination import add_list_route

router = APIRouter(tags=["tools"])


class Tool(BaseModel):
    tool_id: UUID
    name: str
    description: str
    input_schema: dict[str, Any]
    created_at: datetime


add_list_route(
    router,
    "/v1/tools",
    Tool,
    table="tools",
    id_column="tool_id",
    scope="tools:read",
    summary="List the tenant's tools, newest first.",
)
