"""The audit log: read it, and verify its hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from strata.auth import Principal
from strata.pagination import Page, PageRequest, page_of, page_request, position_before
from strata.web import require_scope
from strata_supervision import audit

router = APIRouter(tags=["audit"])


class AuditEntry(BaseModel):
    seq: int
    kind: str
    entry: dict[str, Any] = Field(description="The entry's content, as hashed (its canonical JSON text)")
    prev_hash: str
    hash: str
    signature: str | None
    key_id: str | None
    created_at: datetime


class BrokenLink(BaseModel):
    seq: int
    problem: str


class Verification(BaseModel):
    ok: bool
    checked: int = Field(description="Entries whose links held")
    signed: int = Field(description="Of those, how many carried a verified signature")
    first_broken: BrokenLink | None


@router.get("/v1/audit", response_model=Page[AuditEntry], summary="Read the audit log, newest first.")
async def list_audit(
    principal: Annotated[Principal, Depends(require_scope("audit:read"))],
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """Read the audit log, newest first: every decision, approval, vote, policy change and suspension."""
    rows = await audit.entries(principal.tenant_id, position_before(page), page.limit + 1)
    items, next_cursor = page_of(rows, page, position_key="seq")
    return {"items": items, "next_cursor": next_cursor}


@router.post("/v1/audit/verify", response_model=Verification, summary="Verify the audit log's hash chain.")
async def verify_audit(principal: Annotated[Principal, Depends(require_scope("audit:read"))]) -> dict[str, Any]:
    """Walk the chain from its first entry: each entry's hash must cover the previous one's and its own text, the
    sequence must have no gap, signatures (when signing is on) must verify, and the head must be the last entry.
    Reports the first broken link."""
    return await audit.verify(principal.tenant_id)
