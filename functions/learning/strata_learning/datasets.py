"""Training datasets: a filter over the tenant's active training examples and how to split them (train / validation
/ test ratios, a seed, a stratum). Each version is a snapshot: the examples the filter took then, each with its
split. Splits are stratified (within each stratum the ratios hold as nearly as whole examples allow) and
reproducible: the same examples with the same seed always split the same way."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strata import db
from strata.errors import ConflictError, NotFoundError
from strata.pagination import PageRequest, Where, fetch_page, page_of, position_before

SPLITS = ("train", "validation", "test")
COLUMNS = "dataset_id, name, description, filter, splits, seed, stratify_by, version, created_at, updated_at"
VERSION_COLUMNS = "version, counts, created_by, created_at"


class ExampleFilter(BaseModel):
    """Which active examples a dataset takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_score: float | None = Field(default=None, ge=0, le=1, description="Examples scored at least this")
    agent_id: UUID | None = None
    labels_any: list[str] | None = Field(default=None, max_length=20, description="Examples with any of these labels")
    sources: list[Literal["run", "correction"]] | None = None
    since: datetime | None = None


class Splits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    train: float = Field(default=0.8, ge=0, le=1)
    validation: float = Field(default=0.1, ge=0, le=1)
    test: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Splits:
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"the splits sum to {total:.6g}; they must sum to 1")
        return self


def assign(examples: list[tuple[str, str]], splits: Splits, seed: int) -> dict[str, str]:
    """Each example's split. `examples`: (example id, stratum). Within a stratum the examples are ordered by a hash
    of the seed and their id, and cut by the ratios (largest remainders get the odd examples), so the result depends
    only on the set of examples and the seed."""
    ratios = splits.model_dump()
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for example_id, stratum in examples:
        by_stratum[stratum].append(example_id)
    found: dict[str, str] = {}
    for members in by_stratum.values():
        members.sort(key=lambda e: hashlib.sha256(f"{seed}:{e}".encode()).hexdigest())
        n = len(members)
        quotas = {s: ratios[s] * n for s in SPLITS}
        counts = {s: math.floor(quotas[s]) for s in SPLITS}
        by_remainder = sorted(SPLITS, key=lambda s: (-(quotas[s] - counts[s]), SPLITS.index(s)))
        for s in by_remainder[: n - sum(counts.values())]:
            counts[s] += 1
        at = 0
        for s in SPLITS:
            for example_id in members[at : at + counts[s]]:
                found[example_id] = s
            at += counts[s]
    return found


async def create(
    tenant_id: UUID, by: str, name: str, description: str, filter_: ExampleFilter, splits: Splits, seed: int,
    stratify_by: str,
) -> dict[str, Any]:  # fmt: skip
    """Create the dataset and its first version."""
    from asyncpg import UniqueViolationError

    dataset_id = uuid4()
    try:
        async with db.transaction(tenant_id) as conn:
            await conn.execute(
                """INSERT INTO datasets (tenant_id, dataset_id, name, description, filter, splits, seed, stratify_by)
                   VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7)""",
                dataset_id,
                name,
                description,
                filter_.model_dump(mode="json", exclude_none=True),
                splits.model_dump(),
                seed,
                stratify_by,
            )
            await _snapshot(conn, dataset_id, by)
    except UniqueViolationError as exc:
        raise ConflictError(f"a dataset named {name!r} exists") from exc
    return await get(tenant_id, dataset_id)


async def new_version(tenant_id: UUID, dataset_id: UUID, by: str) -> dict[str, Any]:
    """Snapshot the examples the dataset's filter takes now as its next version."""
    async with db.transaction(tenant_id) as conn:
        version = await _snapshot(conn, dataset_id, by)
        row = await conn.fetchrow(
            f"SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset_id = $1 AND version = $2",  # noqa: S608
            dataset_id,
            version,
        )
    assert row is not None
    return dict(row)


async def _snapshot(conn: Any, dataset_id: UUID, by: str) -> int:
    dataset = await conn.fetchrow(
        "SELECT filter, splits, seed, stratify_by, version FROM datasets WHERE dataset_id = $1 AND deleted_at IS NULL "
        "FOR UPDATE",
        dataset_id,
    )
    if dataset is None:
        raise NotFoundError(f"no dataset {dataset_id}")
    chosen = ExampleFilter.model_validate(dataset["filter"])
    clauses, args = ["status = 'active'"], []  # the transaction's tenant scopes the rows (RLS)
    for fragment, value in (
        ("score >= {}", chosen.min_score),
        ("agent_id = {}", chosen.agent_id),
        ("labels && {}::text[]", chosen.labels_any),
        ("source = ANY({}::text[])", chosen.sources),
        ("created_at >= {}", chosen.since),
    ):
        if value is not None:
            args.append(value)
            clauses.append(fragment.format(f"${len(args)}"))
    rows = await conn.fetch(
        f"SELECT example_id, agent_id, labels FROM training_examples WHERE {' AND '.join(clauses)}",  # noqa: S608
        *args,
    )
    splits = assign(
        [(str(r["example_id"]), _stratum(r, dataset["stratify_by"])) for r in rows],
        Splits(**dataset["splits"]),
        dataset["seed"],
    )
    version = int(dataset["version"]) + 1
    counts = {s: sum(1 for v in splits.values() if v == s) for s in SPLITS}
    await conn.execute(
        "INSERT INTO dataset_versions (tenant_id, dataset_id, version, counts, created_by) "
        "VALUES (strata_tenant(), $1, $2, $3, $4)",
        dataset_id,
        version,
        counts,
        by,
    )
    await conn.execute(
        """INSERT INTO dataset_examples (tenant_id, dataset_id, version, example_id, split)
           SELECT strata_tenant(), $1, $2, e, s FROM unnest($3::uuid[], $4::text[]) AS t(e, s)""",
        dataset_id,
        version,
        [UUID(e) for e in splits],
        list(splits.values()),
    )
    await conn.execute(
        "UPDATE datasets SET version = $2, updated_at = now() WHERE dataset_id = $1", dataset_id, version
    )
    return version


def _stratum(example: Any, stratify_by: str) -> str:
    if stratify_by == "agent":
        return str(example["agent_id"] or "")
    if stratify_by == "label":
        return ",".join(sorted(example["labels"]))
    return ""


async def get(tenant_id: UUID, dataset_id: UUID) -> dict[str, Any]:
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM datasets WHERE dataset_id = $1 AND deleted_at IS NULL",  # noqa: S608
            dataset_id,
        )
        if row is None:
            raise NotFoundError(f"no dataset {dataset_id}")
        latest = await conn.fetchrow(
            "SELECT counts FROM dataset_versions WHERE dataset_id = $1 AND version = $2", dataset_id, row["version"]
        )
    return {**dict(row), "counts": latest["counts"] if latest else {}}


async def list_page(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    where = Where(tenant_id).add("deleted_at IS NULL")
    return await fetch_page("datasets", COLUMNS, "dataset_id", where, page)


async def versions(tenant_id: UUID, dataset_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    await get(tenant_id, dataset_id)
    before = position_before(page)
    rows = await db.fetch(
        f"SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset_id = $1 "  # noqa: S608 - constant columns
        "AND ($2::int IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
        dataset_id,
        before,
        page.limit + 1,
        tenant_id=tenant_id,
    )
    return page_of([dict(r) for r in rows], page)


async def version_examples(tenant_id: UUID, dataset_id: UUID, version: int) -> list[dict[str, Any]]:
    """A version's examples with their splits and conversations (what an export writes), in a stable order."""
    rows = await db.fetch(
        """SELECT d.split, e.example_id, e.messages, e.output FROM dataset_examples d
           JOIN training_examples e ON e.example_id = d.example_id
           WHERE d.dataset_id = $1 AND d.version = $2
           ORDER BY d.split, e.example_id""",
        dataset_id,
        version,
        tenant_id=tenant_id,
    )
    return [dict(r) for r in rows]


async def version_members(tenant_id: UUID, dataset_id: UUID, version: int, split: str | None) -> list[dict[str, Any]]:
    """A version's example ids with their splits (the membership alone, without the conversations)."""
    rows = await db.fetch(
        """SELECT example_id, split FROM dataset_examples
           WHERE dataset_id = $1 AND version = $2 AND ($3::text IS NULL OR split = $3) ORDER BY split, example_id""",
        dataset_id,
        version,
        split,
        tenant_id=tenant_id,
    )
    return [dict(r) for r in rows]


async def version_of(tenant_id: UUID, dataset_id: UUID, version: int) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset_id = $1 AND version = $2",  # noqa: S608
        dataset_id,
        version,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"dataset {dataset_id} has no version {version}")
    return dict(rows[0])


async def delete(tenant_id: UUID, dataset_id: UUID) -> None:
    async with db.transaction(tenant_id) as conn:
        done = await conn.execute(
            "UPDATE datasets SET deleted_at = now() WHERE dataset_id = $1 AND deleted_at IS NULL", dataset_id
        )
    if not done.endswith(" 1"):
        raise NotFoundError(f"no dataset {dataset_id}")
