"""What a tool is to L03: its name, version, JSON Schemas for input and output, default limits, whether a human
must approve each call, and the code that runs it (imported on its first call); and how a call fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from strata.handler import resolve


class ToolFailure(Exception):
    """A call that ran and failed: `kind` (bad_input, timeout, too_large, denied, unreachable, error, memory,
    output_limit, invalid_output, interrupted) and what happened, both recorded in the ledger."""

    def __init__(self, kind: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details

    def as_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.details}


@dataclass(frozen=True)
class ToolContext:
    """What a call runs with: the tenant's effective limits and configuration of the tool."""

    tenant_id: UUID
    timeout_s: float
    max_output_bytes: int
    config: dict[str, Any]
    target: dict[str, Any] = field(default_factory=dict)  # where a remote tool lives (never shown to tenants)


Run = Callable[[dict[str, Any], ToolContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    version: int
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    run: str  # "module:function", imported on first use
    timeout_s: float = 10.0  # the most a tenant may set, and the default
    max_output_bytes: int = 1_000_000
    requires_approval: bool = False
    side_effects: bool = False  # reaches outside the platform (the runtime never replays such a call blindly)
    # pure, in-process and quick (no I/O, microseconds): the ledger runs it inside the one transaction that records
    # it, instead of between a committed claim and a finish (which only a call with effects needs)
    instant: bool = False
    config_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "additionalProperties": False})
    config_check: str | None = None  # "module:function" raising ValueError for a configuration the schema allows

    def check_config(self, config: dict[str, Any]) -> None:
        """ValueError when `config` is one this tool cannot run with (beyond its schema)."""
        if self.config_check is not None:
            check: Callable[[dict[str, Any]], None] = resolve(self.config_check)
            check(config)

    def runner(self) -> Run:
        found: Run = resolve(self.run)
        return found
