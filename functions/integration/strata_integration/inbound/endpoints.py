"""A tenant's inbound webhook endpoints (table `inbound_webhooks`): created with a secret shown once (generated, or
for GitHub and Slack the one configured on their side), changed with If-Match, rotated with an overlap during which
the previous secret still verifies, deleted with their delivery records."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from strata import db
from strata.errors import ConflictError, InvalidInputError, NotFoundError
from strata.etags import check_version
from strata.pagination import PageRequest, Where, fetch_page
from strata.versioned import update_row
from strata_integration.inbound.mapping import FilterCondition, GoalMapping

# the previous secret's overlap is shown only while it lasts
COLUMNS = (
    "endpoint_id, name, description, scheme, secret_source, mapping, filter, enabled, version, secret_rotated_at, "
    "CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at, "
    "created_by, created_at, updated_at"
)
SCHEMES = ("strata", "github", "slack")
HOOK_PATH = "/v1/hooks/{endpoint_id}"


def new_secret() -> str:
    """A generated signing secret (256 bits; the prefix tells it apart from other credentials)."""
    return f"whsec_{secrets.token_urlsafe(32)}"


def view(row: Any) -> dict[str, Any]:
    """An endpoint as the API shows it (never its secrets): the mapping with every field, each filter condition
    with only the operator it was given (as stored)."""
    mapping = GoalMapping.model_validate(row["mapping"]).model_dump(mode="json")
    return {**dict(row), "mapping": mapping, "url_path": HOOK_PATH.format(endpoint_id=row["endpoint_id"])}


def _check_secret(scheme: str, secret: str | None) -> None:
    if scheme == "strata" and secret is not None:
        raise InvalidInputError(
            "a strata endpoint's secret is generated (omit secret); only github and slack endpoints take the secret "
            "configured on the sender's side",
            errors=[{"loc": ["body", "secret"], "msg": "not allowed for scheme strata", "type": "value_error"}],
        )
    if scheme == "slack" and secret is None:
        raise InvalidInputError(
            "a slack endpoint needs the Slack app's signing secret (Basic Information > App Credentials)",
            errors=[{"loc": ["body", "secret"], "msg": "required for scheme slack", "type": "missing"}],
        )


def _name_taken(exc: Exception, name: str) -> None:
    if "inbound_webhooks_name" in str(exc):
        raise ConflictError(f"an inbound webhook named {name!r} exists already") from exc


async def create(
    tenant_id: UUID,
    by: str,
    *,
    name: str,
    description: str,
    scheme: str,
    secret: str | None,
    mapping: GoalMapping,
    filter: list[FilterCondition],
    enabled: bool,
) -> tuple[dict[str, Any], str | None]:
    """Create an endpoint; returns it and its secret when generated (None when the tenant supplied it)."""
    _check_secret(scheme, secret)
    signing_secret = secret if secret is not None else new_secret()
    async with db.transaction(tenant_id) as conn:
        try:
            row = await conn.fetchrow(
                f"""INSERT INTO inbound_webhooks (tenant_id, endpoint_id, name, description, scheme, secret,
                                                  secret_source, mapping, filter, enabled, created_by)
                    VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    RETURNING {COLUMNS}""",  # noqa: S608 - constant columns
                uuid4(),
                name,
                description,
                scheme,
                signing_secret,
                "generated" if secret is None else "supplied",
                dump_mapping(mapping),
                dump_filter(filter),
                enabled,
                by,
            )
        except Exception as exc:
            _name_taken(exc, name)
            raise
    return view(row), None if secret is not None else signing_secret


def dump_mapping(mapping: GoalMapping) -> dict[str, Any]:
    return mapping.model_dump(mode="json", exclude_defaults=True)


def dump_filter(conditions: list[FilterCondition]) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", by_alias=True, exclude_unset=True) for c in conditions]


async def get(tenant_id: UUID, endpoint_id: UUID) -> dict[str, Any]:
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM inbound_webhooks WHERE endpoint_id = $1",  # noqa: S608 - constant columns
        endpoint_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no inbound webhook {endpoint_id}")
    return view(rows[0])


async def list_page(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    items, cursor = await fetch_page("inbound_webhooks", COLUMNS, "endpoint_id", Where(tenant_id), page)
    return [view(item) for item in items], cursor


async def _lock(conn: Any, endpoint_id: UUID, expected: int | None) -> Any:
    row = await conn.fetchrow(
        "SELECT scheme, version FROM inbound_webhooks WHERE endpoint_id = $1 FOR UPDATE", endpoint_id
    )
    if row is None:
        raise NotFoundError(f"no inbound webhook {endpoint_id}")
    check_version(expected, row["version"])
    return row


async def update(tenant_id: UUID, endpoint_id: UUID, expected: int | None, changes: dict[str, Any]) -> dict[str, Any]:
    """Change an endpoint's name, description, mapping, filter or enabled (a new version)."""
    values = dict(changes)
    if "mapping" in values:
        values["mapping"] = dump_mapping(values["mapping"])
    if "filter" in values:
        values["filter"] = dump_filter(values["filter"])
    async with db.transaction(tenant_id) as conn:
        await _lock(conn, endpoint_id, expected)
        if not values:  # nothing to change: the endpoint as it is
            row = await conn.fetchrow(
                f"SELECT {COLUMNS} FROM inbound_webhooks WHERE endpoint_id = $1",  # noqa: S608
                endpoint_id,
            )
            return view(row)
        try:
            row = await update_row(conn, "inbound_webhooks", "endpoint_id", endpoint_id, values, COLUMNS)
        except Exception as exc:
            _name_taken(exc, str(values.get("name")))
            raise
    return view(row)


async def rotate(
    tenant_id: UUID, endpoint_id: UUID, expected: int | None, overlap_s: int, secret: str | None
) -> tuple[dict[str, Any], str | None]:
    """Give the endpoint a new secret; the current one keeps verifying for `overlap_s` (one previous secret is
    kept: rotating again within the overlap retires the oldest at once). Returns the endpoint and the new secret
    when generated."""
    async with db.transaction(tenant_id) as conn:
        current = await _lock(conn, endpoint_id, expected)
        if current["scheme"] == "strata" and secret is not None:
            _check_secret("strata", secret)
        signing_secret = secret if secret is not None else new_secret()
        row = await conn.fetchrow(
            f"""UPDATE inbound_webhooks SET
                    previous_secret = CASE WHEN $2::int > 0 THEN secret END,
                    previous_secret_expires_at = CASE WHEN $2::int > 0 THEN now() + make_interval(secs => $2::int) END,
                    secret = $3, secret_source = $4, secret_rotated_at = now(),
                    version = version + 1, updated_at = now()
                WHERE endpoint_id = $1
                RETURNING {COLUMNS}""",  # noqa: S608 - constant columns
            endpoint_id,
            overlap_s,
            signing_secret,
            "generated" if secret is None else "supplied",
        )
    return view(row), None if secret is not None else signing_secret


async def delete(tenant_id: UUID, endpoint_id: UUID, expected: int | None) -> None:
    """Delete an endpoint, its secrets and its delivery records; its URL answers as an unknown one from then on."""
    async with db.transaction(tenant_id) as conn:
        await _lock(conn, endpoint_id, expected)
        await conn.execute("DELETE FROM inbound_webhook_deliveries WHERE endpoint_id = $1", endpoint_id)
        await conn.execute("DELETE FROM inbound_webhooks WHERE endpoint_id = $1", endpoint_id)


@dataclass(frozen=True)
class Endpoint:
    """An endpoint as the receiving route needs it: whose it is, how it verifies, and what it maps to."""

    endpoint_id: UUID
    tenant_id: UUID
    name: str
    scheme: str
    secrets: tuple[str, ...]  # the current secret first, then the previous one while its overlap lasts
    mapping: GoalMapping
    filter: tuple[FilterCondition, ...]
    enabled: bool


async def find(endpoint_id: UUID) -> Endpoint | None:
    """The endpoint a delivery names, before its tenant is known: by its unguessable id, on the platform's own
    connection (the only read of this table outside a tenant's scope)."""
    async with db.transaction(None) as conn:
        row = await conn.fetchrow(
            """SELECT endpoint_id, tenant_id, name, scheme, secret, enabled, mapping, filter,
                      CASE WHEN previous_secret_expires_at > now() THEN previous_secret END AS previous_secret
               FROM inbound_webhooks WHERE endpoint_id = $1""",
            endpoint_id,
        )
    if row is None:
        return None
    return Endpoint(
        endpoint_id=row["endpoint_id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        scheme=row["scheme"],
        secrets=tuple(s for s in (row["secret"], row["previous_secret"]) if s),
        mapping=GoalMapping.model_validate(row["mapping"]),
        filter=tuple(FilterCondition.model_validate(c) for c in row["filter"]),
        enabled=row["enabled"],
    )
