"""Evaluation datasets: named sets of cases an agent is run over in a regression run. A case gives the agent's input
(text instructions or a JSON input) and how its output is judged: an expected output, assertions, a rubric (its
own or the dataset's), or the dataset's output schema. Changing a dataset (If-Match) makes a new version; a
regression run keeps the cases it ran."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strata import db, jsonschemas
from strata.assertions import Assertion
from strata.errors import ConflictError, InvalidInputError, NotFoundError
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import lock_current, soft_delete_row, update_row

CaseKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
COLUMNS = "dataset_id, name, description, instructions, output_schema, rubric, cases, version, created_at, updated_at"
SUMMARY_COLUMNS = "dataset_id, name, description, version, jsonb_array_length(cases) AS case_count, updated_at"
UPDATABLE = ("description", "instructions", "output_schema", "rubric", "cases")
MAX_CASES = 500


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: CaseKey
    input: str | dict[str, Any] = Field(description="What the agent is given: instructions, or a JSON input")
    expected: Any = Field(
        default=None,
        description="The expected output: an object's fields must each equal their value, anything else the whole "
        "output",
    )
    criteria: list[Assertion] = Field(default_factory=list, max_length=50)
    rubric: str | None = Field(default=None, max_length=5000, description="For the LLM judge; else the dataset's")
    tags: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _input_fits(self) -> EvalCase:
        if isinstance(self.input, str) and not self.input.strip():
            raise ValueError("a case's input must not be empty")
        return self


class DatasetFields(BaseModel):
    """What a dataset holds besides its name."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field(default="", max_length=2000)
    instructions: str = Field(default="", max_length=20_000, description="Given to the agent before every case")
    output_schema: dict[str, Any] | None = Field(default=None, description="Every case's output must fit it")
    rubric: str | None = Field(default=None, max_length=5000, description="The judge's rubric for cases without one")
    cases: list[EvalCase] = Field(min_length=1, max_length=MAX_CASES)


def check(fields: dict[str, Any]) -> None:
    """422 unless case ids are unique, the schema is valid, and every case can be scored."""
    if fields.get("output_schema") is not None:
        jsonschemas.check_schema(fields["output_schema"], "output_schema")
    seen: set[str] = set()
    problems: list[str] = []
    for case in fields["cases"]:
        if case["case_id"] in seen:
            problems.append(f"the case id {case['case_id']!r} is used twice")
        seen.add(case["case_id"])
        scorable = (
            case.get("expected") is not None
            or case.get("criteria")
            or case.get("rubric")
            or fields.get("rubric")
            or fields.get("output_schema")
        )
        if not scorable:
            problems.append(
                f"case {case['case_id']} has nothing to score it by: give it expected, criteria or a rubric "
                "(or the dataset a rubric or an output schema)"
            )
    if problems:
        raise InvalidInputError("; ".join(problems[:20]), problems=problems)


async def create(tenant_id: UUID, name: str, fields: DatasetFields) -> dict[str, Any]:
    from asyncpg import UniqueViolationError

    values = fields.model_dump(mode="json", include=set(DatasetFields.model_fields))
    check(values)
    try:
        async with db.transaction(tenant_id) as conn:
            row = await conn.fetchrow(
                f"""INSERT INTO eval_datasets (tenant_id, dataset_id, name, description, instructions, output_schema,
                                               rubric, cases)
                    VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}""",  # noqa: S608
                uuid4(),
                name,
                values["description"],
                values["instructions"],
                values["output_schema"],
                values["rubric"],
                values["cases"],
            )
    except UniqueViolationError as exc:
        raise ConflictError(f"an evaluation dataset named {name!r} exists") from exc
    assert row is not None
    return dict(row)


async def get(tenant_id: UUID, dataset_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM eval_datasets WHERE dataset_id = $1 AND deleted_at IS NULL",  # noqa: S608
        dataset_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no evaluation dataset {dataset_id}")
    return dict(rows[0])


async def list_page(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add("deleted_at IS NULL")
    return await fetch_page("eval_datasets", SUMMARY_COLUMNS, "dataset_id", where, page)


async def change(tenant_id: UUID, dataset_id: UUID, changes: dict[str, Any], expected: int | None) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "eval_datasets", "dataset_id", dataset_id, expected, "evaluation dataset")
        current = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM eval_datasets WHERE dataset_id = $1",  # noqa: S608 - constant columns
            dataset_id,
        )
        assert current is not None
        changed = {k: v for k, v in changes.items() if k in UPDATABLE and v != current[k]}
        if not changed:
            return dict(current)
        check({**dict(current), **changed})
        return await update_row(conn, "eval_datasets", "dataset_id", dataset_id, changed, COLUMNS)


async def delete(tenant_id: UUID, dataset_id: UUID, expected: int | None) -> None:
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "eval_datasets", "dataset_id", dataset_id, expected, "evaluation dataset")
        await soft_delete_row(conn, "eval_datasets", "dataset_id", dataset_id)
