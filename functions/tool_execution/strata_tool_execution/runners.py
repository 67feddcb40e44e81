"""Adapters from a tool call (arguments, context) to the built-ins that need more than their arguments: the HTTP
allowlist and the operator's private hosts for `http_request`, sandbox limits for `python`."""

from __future__ import annotations

import os
from typing import Any

from strata_tool_execution.definitions import ToolContext, ToolFailure

# Hosts (name or IP, optionally ":port") the operator lets http_request reach although they resolve to private
# addresses: local development and tests only. Tenants cannot set this.
PRIVATE_HOSTS_ENV = "STRATA_TOOLS_PRIVATE_HOSTS"


def check_http_config(config: dict[str, Any]) -> None:
    """ValueError for an allowlist entry the guard cannot use (checked when a tenant sets it)."""
    from strata_tool_execution.builtins.http_request import HttpPolicy

    HttpPolicy(allowed_hosts=tuple(config.get("allowed_hosts", ())))


async def http(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    from strata_tool_execution.builtins.http_request import HttpPolicy, HttpToolError, http_request

    try:
        policy = HttpPolicy(
            allowed_hosts=tuple(context.config.get("allowed_hosts", ())),
            private_hosts=tuple(h.strip() for h in os.environ.get(PRIVATE_HOSTS_ENV, "").split(",") if h.strip()),
            timeout_s=context.timeout_s,
            max_response_bytes=context.max_output_bytes,
        )
    except ValueError as exc:  # settings saved before a check existed, or a bad operator setting
        raise ToolFailure("denied", f"the HTTP allowlist cannot be used: {exc}") from exc
    try:
        return await http_request(arguments, policy)
    except HttpToolError as exc:
        raise ToolFailure(exc.kind, str(exc)) from exc


async def python(arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    from strata_tool_execution.builtins.python_sandbox import SandboxLimits, run_python

    limits = SandboxLimits(
        timeout_s=context.timeout_s,
        cpu_s=max(1, int(context.timeout_s)),
        max_output_bytes=context.max_output_bytes,
    )
    outcome = await run_python(arguments["code"], arguments.get("inputs", {}), limits)
    if outcome.outcome != "ok":
        raise ToolFailure(outcome.outcome, outcome.detail, stdout=outcome.stdout[-4000:], stderr=outcome.stderr[-4000:])
    return {"result": outcome.result, "stdout": outcome.stdout, "stderr": outcome.stderr}
