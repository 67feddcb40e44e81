"""Feedback on a run or one of its tasks: a rating (1 to 5), a label, a comment, a correction (the output it should
have been). A low rating keeps the run out of training (its examples are excluded, and none are drawn from it
later); a label is added to the examples it is about; a correction becomes an example of its own."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from strata import db, peers
from strata.errors import InvalidInputError, NotFoundError
from strata.pagination import PageRequest, Where, fetch_page
from strata_learning import examples
from strata_learning.examples import NEGATIVE_RATING

COLUMNS = "feedback_id, subject_type, run_id, task_id, rating, label, comment, correction, given_by, created_at"


async def give(
    tenant_id: UUID,
    correlation_id: str,
    given_by: str,
    run_id: UUID,
    task_id: str | None,
    rating: int | None,
    label: str | None,
    comment: str,
    correction: Any,
) -> dict[str, Any]:
    found = None
    try:
        if correction is not None:
            if task_id is None:
                raise InvalidInputError("a correction is of one task's output: name the task")
            found = await examples.conversation(tenant_id, correlation_id, run_id, task_id, answer=correction)
        else:
            path = f"/v1/runs/{run_id}/tasks/{task_id}" if task_id else f"/v1/runs/{run_id}"
            await peers.get_json(path, tenant_id=tenant_id, correlation_id=correlation_id)
    except peers.PeerStatusError as exc:
        if exc.status == 404:
            raise NotFoundError(f"no run {run_id}" + (f" with a task {task_id!r}" if task_id else "")) from exc
        raise
    feedback_id = uuid4()
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO feedback (feedback_id, tenant_id, subject_type, subject_id, run_id, task_id, rating, label,
                                      comment, correction, given_by)
                VALUES ($1, strata_tenant(), $2, $3, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}""",  # noqa: S608
            feedback_id,
            "task" if task_id else "run",
            run_id,
            task_id,
            rating,
            label,
            comment,
            correction,
            given_by,
        )
        about = "run_id = $1" + (" AND task_id = $2" if task_id else "")
        args: list[Any] = [run_id, *([task_id] if task_id else [])]
        if rating is not None and rating <= NEGATIVE_RATING:
            await conn.execute(
                f"UPDATE training_examples SET status = 'excluded', excluded_reason = ${len(args) + 1} "  # noqa: S608
                f"WHERE {about} AND source = 'run' AND status = 'active'",
                *args,
                f"rated {rating} by {given_by}",
            )
        if label:
            await conn.execute(
                f"UPDATE training_examples SET labels = array_append(labels, ${len(args) + 1}) "  # noqa: S608
                f"WHERE {about} AND NOT (${len(args) + 1} = ANY(labels))",
                *args,
                label,
            )
        if found is not None and task_id is not None:
            await examples.from_correction(
                conn, tenant_id, feedback_id, run_id, task_id, found, [label] if label else []
            )
    assert row is not None
    return dict(row)


async def get(tenant_id: UUID, feedback_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM feedback WHERE feedback_id = $1",  # noqa: S608 - constant columns
        feedback_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no feedback {feedback_id}")
    return dict(rows[0])


async def list_page(tenant_id: UUID, page: PageRequest, run_id: UUID | None) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add_if(run_id, "run_id = {}")
    return await fetch_page("feedback", COLUMNS, "feedback_id", where, page)
