"""Dry runs: the tenant's newest recorded decisions replayed under its policy set as it would be after candidate
changes, reporting every decision that would now come out differently. Nothing is stored. Suspensions are left
out (a dry run is about policies); a decision made by a human's approval is compared by what the policies said
then (an approval was required)."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from strata import db
from strata.decisions import DecisionRequest, EntityRef
from strata.errors import InvalidInputError, NotFoundError
from strata_supervision import decider, engine, policies


async def _candidate_set(tenant_id: UUID, changes: list[dict[str, Any]]) -> engine.CompiledSet:
    async with db.transaction(tenant_id) as conn:
        current = await policies.active(conn)
    by_id = {str(p["policy_id"]): p for p in current}
    added: list[dict[str, Any]] = []
    for n, change in enumerate(changes):
        policy_id = str(change["policy_id"]) if change.get("policy_id") else None
        if policy_id is not None and policy_id not in by_id:
            raise NotFoundError(f"change {n}: the tenant has no enabled policy {policy_id}")
        if change.get("delete"):
            if policy_id is None:
                raise InvalidInputError(f"change {n}: a deletion names its policy_id")
            del by_id[policy_id]
            continue
        if not change.get("cedar"):
            raise InvalidInputError(f"change {n}: give the policy's new cedar text, or delete: true")
        try:
            statements = engine.parse_statements(change["cedar"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"change {n}: {exc.detail}", errors=exc.extra.get("errors", [])) from exc
        if policy_id is None:
            added.append(
                {
                    "policy_id": f"candidate-{n}",
                    "name": f"candidate {n}",
                    "version": 1,
                    "cedar": change["cedar"],
                    "statements": statements,
                }
            )
        else:
            by_id[policy_id] = {
                **by_id[policy_id],
                "version": by_id[policy_id]["version"] + 1,
                "cedar": change["cedar"],
                "statements": statements,
            }
    return engine.compile_set(-1, [*by_id.values(), *added])


async def replay(tenant_id: UUID, changes: list[dict[str, Any]], limit: int, action: str | None) -> dict[str, Any]:
    compiled = await _candidate_set(tenant_id, changes)
    rows = await db.fetch(
        "SELECT decision_id, action, principal_type, principal_id, resource_type, resource_id, context, outcome, "
        "policies, approval_id, created_at FROM decisions WHERE ($1::text IS NULL OR action = $1) "
        "ORDER BY created_at DESC, decision_id DESC LIMIT $2",
        action,
        limit,
        tenant_id=tenant_id,
    )
    differences: list[dict[str, Any]] = []
    transitions: Counter[str] = Counter()
    replayed = skipped = 0
    for row in rows:
        if not row["policies"]:
            skipped += 1  # decided before any policy was read: by the kill switch, or an unknown principal
            continue
        request = DecisionRequest(
            action=row["action"],
            principal=EntityRef(type=row["principal_type"], id=row["principal_id"]),
            resource=EntityRef(type=row["resource_type"], id=row["resource_id"]),
            resource_attributes=row["context"].get("resource_attributes", {}),
            context=row["context"].get("context", {}),
        )
        actions = ("run.start", "plan.approve") if row["action"] == "plan.approve" else (row["action"],)
        try:
            principal = await decider.resolve(tenant_id, request.principal, "dry-run")
            verdict = decider.judge(compiled, tenant_id, request, principal, actions)
        except InvalidInputError:
            skipped += 1
            continue
        if verdict.reasons and verdict.reasons[0].startswith("unknown principal"):
            skipped += 1
            continue
        replayed += 1
        recorded = "approval_required" if row["approval_id"] is not None else row["outcome"]
        if verdict.outcome != recorded:
            transitions[f"{recorded}->{verdict.outcome}"] += 1
            differences.append(
                {
                    "decision_id": row["decision_id"],
                    "action": row["action"],
                    "principal": f"{row['principal_type']}::{row['principal_id']}",
                    "resource": f"{row['resource_type']}::{row['resource_id']}",
                    "recorded": recorded,
                    "now": verdict.outcome,
                    "reasons": verdict.reasons,
                    "created_at": row["created_at"],
                }
            )
    return {
        "replayed": replayed,
        "changed": len(differences),
        "skipped": skipped,
        "by_outcome": dict(transitions),
        "differences": differences,
    }
