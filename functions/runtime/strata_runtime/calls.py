"""The runtime's calls to other layers: tool calls through L03's ledger, model turns through L04, agent
definitions from L01 and tool descriptions from L03. Transient failures (the peer unreachable, 5xx, 429, a call
of the same key still running) are retried with backoff; what remains is a PeerFailure saying whether a later
attempt could succeed."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from strata import peers
from strata.errors import DependencyUnavailableError
from strata_runtime.settings import runtime_settings

if TYPE_CHECKING:
    from strata.peers import PeerResponse
    from strata_runtime.executor import Attempt

TOOL_CALL_GRACE_S = 15.0  # beyond the tool's own limit, for the ledger and the hop
RUNNING_WAIT_S = 60.0  # how long to keep asking for the result of a call of the same key that is still running


class PeerFailure(Exception):
    def __init__(self, kind: str, message: str, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.status = status


async def invoke_tool(
    attempt: Attempt, tool: str, arguments: dict[str, Any], step: int, call_id: str, timeout_s: float = 120.0
) -> dict[str, Any]:
    """Call a tool once under (run, task, step, call id): the ledger's record of the call (`status` succeeded or
    failed; a call supervision denied is failed, kind `denied`). A call of the same key already running (a resumed
    step) is waited for, never made again. The call is made as the task's agent, or for a tool task on behalf of
    the goal's submitter. A call needing a human's approval is PeerFailure `awaiting_approval` (its message the
    approval id); one refused by the kill switch is PeerFailure `suspended`."""
    key = {"run_id": str(attempt.run_id), "task_id": attempt.task_id, "step": step, "call_id": call_id}
    body: dict[str, Any] = {**key, "input": arguments, "on_behalf_of": attempt.submitted_by or None}
    if attempt.definition.get("agent_id"):
        body["agent_id"] = str(attempt.definition["agent_id"])
    waited_since = time.monotonic()
    while True:
        response = await _call(attempt, "POST", f"/v1/tools/{tool}/invoke", body, timeout_s + TOOL_CALL_GRACE_S)
        if response.status_code == 200:
            answer: dict[str, Any] = response.json()
            return answer
        if response.status_code == 202:
            raise PeerFailure("awaiting_approval", str(response.json()["approval_id"]), False, 202)
        if response.status_code == 409 and "retry-after" in response.headers:
            if time.monotonic() - waited_since > RUNNING_WAIT_S:
                raise PeerFailure("tool_call_stuck", f"the call {call_id} of {tool} is still running", True, 409)
            await asyncio.sleep(min(float(response.headers["retry-after"]), 5.0))
            continue
        raise _failure(f"the tool {tool}", response)


async def chat(attempt: Attempt, request: dict[str, Any]) -> dict[str, Any]:
    """One model turn through L04 (metered against the run and task)."""
    body = {**request, "run_id": str(attempt.run_id), "task_id": attempt.task_id}
    response = await _call(attempt, "POST", "/v1/models/chat", body, runtime_settings().runtime_model_timeout_s)
    if response.status_code == 200:
        answer: dict[str, Any] = response.json()
        return answer
    raise _failure("the model gateway", response)


async def get_json(attempt: Attempt, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await _call(attempt, "GET", path, None, None, params=params)
    if response.status_code == 200:
        answer: dict[str, Any] = response.json()
        return answer
    raise _failure(path, response)


async def _call(
    attempt: Attempt,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    timeout_s: float | None,
    params: dict[str, Any] | None = None,
) -> PeerResponse:
    retries = runtime_settings().runtime_peer_retries
    for n in range(retries + 1):
        try:
            response = await peers.call(
                method,
                path,
                tenant_id=attempt.tenant_id,
                correlation_id=attempt.correlation_id,
                json=body,
                params=params,
                timeout_s=timeout_s,
            )
        except DependencyUnavailableError as exc:
            if n == retries:
                raise PeerFailure("unreachable", str(exc), True) from exc
        else:
            if response.status_code not in (429, 500, 502, 503, 504) or n == retries:
                return response
        await asyncio.sleep(min(0.2 * 2**n, 5.0) * (0.5 + random.random()))  # noqa: S311 - jitter
    raise AssertionError("unreachable")  # pragma: no cover


def _failure(what: str, response: PeerResponse) -> PeerFailure:
    detail = ""
    try:
        detail = str(response.json().get("detail", ""))
    except ValueError:
        detail = response.text[:300]
    status = response.status_code
    kinds = {
        402: "budget_exceeded",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        422: "invalid_input",
        423: "suspended",
    }
    kind = kinds.get(status, "rejected" if status < 500 else "unavailable")
    retryable = status >= 500 or status == 429
    return PeerFailure(kind, f"{what} answered {status}: {detail}"[:2000], retryable, status)
