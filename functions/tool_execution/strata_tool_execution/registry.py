"""The tools a tenant can call: the built-ins with the tenant's own settings on top (enabled, approval, lower
limits, configuration such as http_request's allowed hosts), changed through the API with If-Match."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from strata import db, jsonschemas
from strata.errors import InvalidInputError, NotFoundError
from strata.etags import check_version
from strata_tool_execution import mcp_servers
from strata_tool_execution.catalog import BUILTINS
from strata_tool_execution.definitions import ToolDefinition

LIMIT_NAMES = ("timeout_s", "max_output_bytes")


@dataclass(frozen=True)
class EffectiveTool:
    """A tool as one tenant has it."""

    definition: ToolDefinition
    enabled: bool
    requires_approval: bool
    timeout_s: float
    max_output_bytes: int
    config: dict[str, Any]
    settings_version: int  # 0: the tenant never changed this tool's settings
    source: str = "builtin"  # or "mcp": a tool of one of the tenant's MCP servers
    server: str | None = None  # the MCP server's name
    target: dict[str, Any] = field(default_factory=dict)  # where a remote tool is called (private)

    def view(self) -> dict[str, Any]:
        d = self.definition
        return {
            "name": d.name,
            "version": d.version,
            "description": d.description,
            "source": self.source,
            "server": self.server,
            "input_schema": d.input_schema,
            "output_schema": d.output_schema,
            "side_effects": d.side_effects,
            "enabled": self.enabled,
            "requires_approval": self.requires_approval,
            "limits": {"timeout_s": self.timeout_s, "max_output_bytes": self.max_output_bytes},
            "max_limits": {"timeout_s": d.timeout_s, "max_output_bytes": d.max_output_bytes},
            "config": self.config,
            "config_schema": d.config_schema,
            "settings_version": self.settings_version,
        }


@dataclass(frozen=True)
class Found:
    """A tool's definition, and for a remote tool where it lives."""

    definition: ToolDefinition
    source: str = "builtin"
    server: str | None = None
    target: dict[str, Any] = field(default_factory=dict)


async def _find(conn: Any, name: str) -> Found:
    builtin = BUILTINS.get(name)
    if builtin is not None:
        return Found(builtin)
    if name.startswith(mcp_servers.PREFIX):
        remote = await mcp_servers.tool_on(conn, name)
        if remote is not None:
            return _remote(*remote)
    raise NotFoundError(f"no tool {name!r}")


def _remote(server: dict[str, Any], tool: dict[str, Any]) -> Found:
    """A tool of one of the tenant's MCP servers."""
    return Found(mcp_servers.definition(server, tool), "mcp", server["name"], mcp_servers.target(server, tool))


def _effective(found: Found, row: dict[str, Any] | None) -> EffectiveTool:
    d = found.definition
    row = row or {}
    limits = row.get("limits") or {}
    requires = row.get("requires_approval")
    return EffectiveTool(
        definition=d,
        enabled=bool(row.get("enabled", True)),
        requires_approval=d.requires_approval if requires is None else bool(requires),
        timeout_s=min(float(limits.get("timeout_s", d.timeout_s)), d.timeout_s),
        max_output_bytes=min(int(limits.get("max_output_bytes", d.max_output_bytes)), d.max_output_bytes),
        config=dict(row.get("config") or {}),
        settings_version=int(row.get("version", 0)),
        source=found.source,
        server=found.server,
        target=found.target,
    )


SETTINGS_COLUMNS = "tool_name, enabled, requires_approval, limits, config, version"


async def tool(tenant_id: UUID, name: str) -> EffectiveTool:
    async with db.transaction(tenant_id) as conn:
        return await tool_on(conn, name)


async def tool_on(conn: Any, name: str) -> EffectiveTool:
    """The tool with the tenant's settings, read in the caller's (tenant-scoped) transaction."""
    found = await _find(conn, name)
    row = await conn.fetchrow(
        f"SELECT {SETTINGS_COLUMNS} FROM tool_settings WHERE tool_name = $1",  # noqa: S608 - constant columns
        name,
    )
    return _effective(found, dict(row) if row is not None else None)


async def tools(tenant_id: UUID) -> list[EffectiveTool]:
    """The built-ins and the tools of the tenant's MCP servers, with the tenant's settings, by name."""
    async with db.transaction(tenant_id) as conn:
        rows = await conn.fetch(f"SELECT {SETTINGS_COLUMNS} FROM tool_settings")  # noqa: S608
        remote = await mcp_servers.tools_on(conn)
    settings = {r["tool_name"]: dict(r) for r in rows}
    found = [Found(d) for d in BUILTINS.values()]
    found += [_remote(server, tool) for server, tool in remote]
    return sorted((_effective(f, settings.get(f.definition.name)) for f in found), key=lambda t: t.definition.name)


def _check_changes(d: ToolDefinition, changes: dict[str, Any]) -> None:
    limits = changes.get("limits") or {}
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            raise InvalidInputError(f"unknown limit {name!r}; limits are {', '.join(LIMIT_NAMES)}")
        ceiling = getattr(d, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= ceiling:
            raise InvalidInputError(f"limits.{name} must be a number above 0 and at most {ceiling}")
    if "config" in changes:
        error = jsonschemas.first_error(d.config_schema, changes["config"])
        if error is not None:
            raise InvalidInputError(f"config does not fit the {d.name} tool's configuration {error}")
        try:
            d.check_config(changes["config"])
        except ValueError as exc:
            raise InvalidInputError(f"config cannot be used by the {d.name} tool: {exc}") from exc


async def change_settings(tenant_id: UUID, name: str, changes: dict[str, Any], expected: int | None) -> EffectiveTool:
    """Apply the changed settings (only those given); 412 when If-Match names another version."""
    async with db.transaction(tenant_id) as conn:
        found = await _find(conn, name)
        _check_changes(found.definition, changes)
        row = await conn.fetchrow(
            f"SELECT {SETTINGS_COLUMNS} FROM tool_settings WHERE tool_name = $1 FOR UPDATE",  # noqa: S608
            name,
        )
        current = dict(row) if row else {"enabled": True, "requires_approval": None, "limits": {}, "config": {}}
        check_version(expected, int(current.get("version", 0)))
        merged = {**current, **{k: v for k, v in changes.items() if k != "limits"}}
        merged["limits"] = {**(current.get("limits") or {}), **(changes.get("limits") or {})}
        saved = await conn.fetchrow(
            f"""INSERT INTO tool_settings AS s (tenant_id, tool_name, enabled, requires_approval, limits, config)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (tenant_id, tool_name) DO UPDATE SET
                    enabled = excluded.enabled, requires_approval = excluded.requires_approval,
                    limits = excluded.limits, config = excluded.config,
                    version = s.version + 1, updated_at = now()
                RETURNING {SETTINGS_COLUMNS}""",  # noqa: S608 - constant columns
            tenant_id,
            name,
            merged["enabled"],
            merged["requires_approval"],
            merged["limits"],
            merged["config"],
        )
    assert saved is not None  # an upsert always returns its row
    return _effective(found, dict(saved))
