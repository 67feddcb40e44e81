"""The model catalogue: the tenant's own entries (in Postgres, managed through the API) plus the platform's
(from configuration, read-only, every tenant's), and what a call on one of them costs."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID, uuid4, uuid5

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from strata import cache, db
from strata.errors import ConflictError, ForbiddenError, NotFoundError
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import lock_current, soft_delete_row, update_row
from strata_model_gateway import registry
from strata_model_gateway.settings import settings

Capability = Literal["chat", "tools", "json", "vision", "embeddings", "streaming"]
LatencyClass = Literal["fast", "standard", "slow"]
LATENCY_ORDER = {"fast": 0, "standard": 1, "slow": 2}
PLATFORM_NAMESPACE = UUID("6f1c2a52-2f5e-4a8e-9d0b-3c4e5f6a7b8c")
COLUMNS = (
    "model_id, name, provider, provider_model, context_window, capabilities, input_usd_per_mtok, "
    "output_usd_per_mtok, cached_usd_per_mtok, latency_class, quality, enabled, version, created_at, updated_at"
)


class ModelSpec(BaseModel):
    """What a catalogue entry says (the API's create body, and the platform configuration's entries)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    provider: str = Field(min_length=1, max_length=50)
    provider_model: str = Field(min_length=1, max_length=200)
    context_window: int = Field(ge=1, le=10_000_000)
    capabilities: list[Capability] = Field(default_factory=lambda: list[Capability](["chat"]), max_length=6)
    input_usd_per_mtok: Decimal = Field(default=Decimal(0), ge=0, le=10_000, decimal_places=6)
    output_usd_per_mtok: Decimal = Field(default=Decimal(0), ge=0, le=10_000, decimal_places=6)
    cached_usd_per_mtok: Decimal = Field(default=Decimal(0), ge=0, le=10_000, decimal_places=6)
    latency_class: LatencyClass = "standard"
    quality: float = Field(default=0.5, ge=0, le=1, description="Relative answer quality, for quality routing")
    enabled: bool = True


class Entry(ModelSpec):
    """A catalogue entry as routing sees it."""

    model_id: UUID
    source: Literal["tenant", "platform"]
    version: int = 1

    def cost_micro_usd(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> int:
        """USD per million tokens x tokens = micro-USD."""
        fresh = max(0, input_tokens - cached_tokens)
        total = (
            fresh * self.input_usd_per_mtok
            + cached_tokens * self.cached_usd_per_mtok
            + output_tokens * self.output_usd_per_mtok
        )
        return int(total.to_integral_value(rounding="ROUND_CEILING"))


EMBEDDED_ENTRY = ModelSpec(
    name="local/gemma3-270m",
    provider=registry.EMBEDDED,
    provider_model="gemma-3-270m-q4_k_m",
    context_window=2048,
    capabilities=["chat", "tools", "json", "streaming", "embeddings"],
    latency_class="slow",
    quality=0.1,
)


@lru_cache
def platform_entries() -> tuple[Entry, ...]:
    """The configured platform entries, and the embedded model when it is available."""
    raw = settings().model_catalogue.strip()
    specs = TypeAdapter(list[ModelSpec]).validate_python(json.loads(raw)) if raw else []
    if registry.embedded_available() and all(s.name != EMBEDDED_ENTRY.name for s in specs):
        specs.append(EMBEDDED_ENTRY)
    return tuple(Entry(**s.model_dump(), model_id=uuid5(PLATFORM_NAMESPACE, s.name), source="platform") for s in specs)


def _entry(row: dict[str, Any]) -> Entry:
    capabilities = row["capabilities"]
    fields = {k: v for k, v in row.items() if k in Entry.model_fields and k != "capabilities"}
    caps = json.loads(capabilities) if isinstance(capabilities, str) else capabilities
    return Entry(**fields, capabilities=caps, source="tenant")


def cache_key(tenant_id: UUID) -> str:
    return f"strata:catalogue:{tenant_id}"


async def _own_entries(tenant_id: UUID) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM models WHERE deleted_at IS NULL ORDER BY created_at",  # noqa: S608 - constants
        tenant_id=tenant_id,
    )
    return [_entry(dict(r)).model_dump(mode="json") for r in rows]


async def entries(tenant_id: UUID, prefetched: Any = cache.NOT_FETCHED) -> list[Entry]:
    """Every entry the tenant may route to: its own (read through a Redis cache that every write invalidates),
    then the platform's (a tenant entry shadows a platform one of the same name)."""
    if isinstance(prefetched, (str, bytes)) and (known := _parsed.get(prefetched)) is not None:
        return list(known)  # the cached catalogue as it was when this environment last parsed it
    rows = await cache.read_through(
        cache_key(tenant_id), lambda: _own_entries(tenant_id), ttl_s=300, prefetched=prefetched
    )
    own = [Entry.model_validate(r) for r in rows]
    names = {e.name for e in own}
    found = own + [e for e in platform_entries() if e.name not in names]
    if isinstance(prefetched, (str, bytes)):
        if len(_parsed) >= PARSED_KEEP:
            _parsed.pop(next(iter(_parsed)))
        _parsed[prefetched] = found
    return found


# Parsed catalogues by the cached JSON text they came from: a call whose prefetch read the same text as an earlier
# one skips validating every entry again (a changed catalogue is new text, so it can never be served stale).
PARSED_KEEP = 256
_parsed: dict[str | bytes, list[Entry]] = {}


async def get(tenant_id: UUID, model_id: UUID) -> Entry:
    for entry in platform_entries():
        if entry.model_id == model_id:
            return entry
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM models WHERE model_id = $1 AND deleted_at IS NULL",  # noqa: S608 - constants
        model_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no model {model_id}")
    return _entry(dict(rows[0]))


async def list_page(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's own entries, newest first, cursor paged; the platform's come first on the first page."""
    where = Where(tenant_id).add("deleted_at IS NULL")
    rows, next_cursor = await fetch_page("models", COLUMNS, "model_id", where, page)
    items = [{**_entry(r).model_dump(), "created_at": r["created_at"], "updated_at": r["updated_at"]} for r in rows]
    if page.cursor is None:
        items = [{**e.model_dump(), "created_at": None, "updated_at": None} for e in platform_entries()] + items
    return items, next_cursor


def _check_provider(provider: str) -> None:
    if provider not in registry.configured():
        known = ", ".join(sorted(registry.configured())) or "none"
        raise ConflictError(f"no provider {provider!r} is configured in this deployment (configured: {known})")


async def create(tenant_id: UUID, spec: ModelSpec) -> Entry:
    _check_provider(spec.provider)
    if any(e.name == spec.name for e in platform_entries()):
        raise ConflictError(f"{spec.name!r} is a platform model's name; choose another")
    model_id = uuid4()
    async with db.transaction(tenant_id) as conn:
        taken = await conn.fetchval("SELECT 1 FROM models WHERE name = $1 AND deleted_at IS NULL", spec.name)
        if taken:
            raise ConflictError(f"a model named {spec.name!r} exists")
        row = await conn.fetchrow(
            f"""INSERT INTO models (model_id, tenant_id, name, provider, provider_model, context_window, capabilities,
                    input_usd_per_mtok, output_usd_per_mtok, cached_usd_per_mtok, latency_class, quality, enabled)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13) RETURNING {COLUMNS}""",  # noqa: S608
            model_id,
            tenant_id,
            spec.name,
            spec.provider,
            spec.provider_model,
            spec.context_window,
            spec.capabilities,
            spec.input_usd_per_mtok,
            spec.output_usd_per_mtok,
            spec.cached_usd_per_mtok,
            spec.latency_class,
            spec.quality,
            spec.enabled,
        )
    assert row is not None
    await cache.invalidate(cache_key(tenant_id))
    return _entry(dict(row))


UPDATABLE = {
    "provider_model",
    "context_window",
    "capabilities",
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "cached_usd_per_mtok",
    "latency_class",
    "quality",
    "enabled",
}


async def update(tenant_id: UUID, model_id: UUID, changes: dict[str, Any], expected: int | None) -> Entry:
    if any(e.model_id == model_id for e in platform_entries()):
        raise ForbiddenError("platform models are configured by the operator, not through the API")
    assert set(changes) <= UPDATABLE
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "models", "model_id", model_id, expected, "model")
        if not changes:  # read on the same connection (a second one would wait on nothing but add a round trip)
            current = await conn.fetchrow(f"SELECT {COLUMNS} FROM models WHERE model_id = $1", model_id)  # noqa: S608
            assert current is not None
            return _entry(dict(current))
        row = await update_row(conn, "models", "model_id", model_id, changes, COLUMNS)
    await cache.invalidate(cache_key(tenant_id))
    return _entry(row)


async def delete(tenant_id: UUID, model_id: UUID, expected: int | None) -> None:
    if any(e.model_id == model_id for e in platform_entries()):
        raise ForbiddenError("platform models are configured by the operator, not through the API")
    async with db.transaction(tenant_id) as conn:
        await lock_current(conn, "models", "model_id", model_id, expected, "model")
        await soft_delete_row(conn, "models", "model_id", model_id)
    await cache.invalidate(cache_key(tenant_id))
