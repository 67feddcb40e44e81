"""Approvals (L08): the inbox of requests for a human's decision, and the vote on one."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from strata_cli.client import ApiKeyOption, ApiOption, connect
from strata_cli.commands.runs import styled
from strata_cli.display import console, local_time, print_json, print_table, table


class ApprovalStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    all = "all"


class SubjectType(StrEnum):
    plan = "plan"
    tool_call = "tool_call"


def list_approvals(
    status: Annotated[
        ApprovalStatus, typer.Option(help="Which requests (all: every status).")
    ] = ApprovalStatus.pending,
    subject_type: Annotated[SubjectType | None, typer.Option(help="Only plans or only tool calls.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many at most (newest first).")] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="Print the requests as JSON.")] = False,
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """List approval requests, newest first (by default those waiting for a decision)."""
    wanted = None if status is ApprovalStatus.all else status.value
    with connect(api, key) as client:
        found = client.first(
            "/v1/approvals", limit, status=wanted, subject_type=subject_type.value if subject_type else None
        )
    if json_output:
        print_json(found)
        return
    shown = table(
        f"Approvals ({status.value})",
        "Approval ID",
        "Status",
        "Subject",
        "What",
        "Why",
        "Requested by",
        "Approvers",
        "Deadline",
    )
    for approval in found:
        approvers = ", ".join(approval["approvers"])
        shown.add_row(
            approval["approval_id"],
            styled(approval["status"]),
            f"{approval['subject_type']} {approval['subject_id']}",
            approval["what"],
            approval["why"],
            approval["requested_by"],
            f"{approvers} (quorum {approval['quorum']}, level {approval['level']})",
            local_time(approval["deadline"]),
        )
    if not found:
        console.print(f"no {status.value} approvals" if wanted else "no approvals")
        return
    print_table(shown)


def _decide(approval_id: str, decision: str, comment: str, api: str | None, key: str | None) -> None:
    with connect(api, key) as client:
        approval = client.post(f"/v1/approvals/{approval_id}", {"decision": decision, "comment": comment})
    votes = (
        f" ({approval.get('approvals') or 0}/{approval['quorum']} approvals)" if approval["status"] == "pending" else ""
    )
    console.print(
        f"approval {approval['approval_id']}: your {decision} is recorded; it is {styled(approval['status'])}{votes}"
    )


Comment = Annotated[str, typer.Option(help="Why (kept with the vote).")]


def approve(
    approval_id: Annotated[str, typer.Argument(help="The approval request's id.")],
    comment: Comment = "",
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Approve a request (its quorum of approvals decides it); not your own work's."""
    _decide(approval_id, "approve", comment, api, key)


def reject(
    approval_id: Annotated[str, typer.Argument(help="The approval request's id.")],
    comment: Comment = "",
    api: ApiOption = None,
    key: ApiKeyOption = None,
) -> None:
    """Reject a request (one rejection decides it)."""
    _decide(approval_id, "reject", comment, api, key)
