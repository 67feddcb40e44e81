"""The agent loop of an agent task: a model turn through L04, then the tool calls it asked for through L03's ledger,
then the next model turn with their results, until the model answers without calling a tool. Bounded by the
agent's step limit, the attempt's tokens, the task's timeout and the budgets L04 enforces.

Every model turn and every set of tool results is a step checkpointed before the next begins; each step stores
only what it added, so a resumed attempt rebuilds the conversation from its steps. A step's tool calls are keyed
(run, task, step, "a<attempt>.<n>"): taken again after a crash, they return what was recorded."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from strata import conversations
from strata_runtime.calls import PeerFailure, chat, get_json, invoke_tool
from strata_runtime.executor import Attempt, TaskFailure, failure_of
from strata_runtime.runs import Usage
from strata_runtime.settings import runtime_settings


async def run(attempt: Attempt) -> dict[str, Any]:
    settings = runtime_settings()
    definition = attempt.definition
    agent = await _agent(attempt, definition.get("agent_id"))
    tools = await _tools(attempt, agent.get("tools"))
    max_steps = int(agent.get("max_steps") or settings.runtime_max_steps)
    messages = conversations.opening(agent.get("system_prompt"), attempt.definition, attempt.input)
    pending: list[dict[str, Any]] = []  # tool calls of the last model turn without recorded results
    turns = 0
    for recorded in await attempt.recorded_steps():
        if recorded["kind"] == "model":
            turns += 1
            messages.append(conversations.assistant(recorded["detail"]))
            pending = [{"step": recorded["step"] + 1, **c} for c in recorded["detail"].get("tool_calls", [])]
        elif recorded["kind"] == "tools":
            messages += [conversations.tool_message(r) for r in recorded["detail"]["results"]]
            pending = []
    while True:
        if pending:
            attempt.check()
            messages += [conversations.tool_message(r) for r in await _call_tools(attempt, pending, tools)]
            pending = []
        attempt.check()
        if turns >= max_steps:
            raise TaskFailure("max_steps", f"the agent took {turns} model turns without finishing", retryable=False)
        used = attempt.usage.input_tokens + attempt.usage.output_tokens
        if used > settings.runtime_task_tokens:
            raise TaskFailure("max_tokens", f"the attempt used {used} tokens, over its limit", retryable=False)
        answer, usage = await _turn(attempt, agent, messages, tools)
        turns += 1
        detail = {
            "model": answer["model"],
            "provider": answer["provider"],
            "content": answer["content"],
            "tool_calls": [
                {"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in answer["tool_calls"]
            ],
            "finish_reason": answer["finish_reason"],
            "cache": answer.get("cache"),
        }
        step = await attempt.checkpoint("model", detail, usage)
        messages.append(conversations.assistant(detail))
        if not detail["tool_calls"]:
            return _output(answer["content"])
        pending = [{"step": step + 1, **c} for c in detail["tool_calls"]]


async def _agent(attempt: Attempt, agent_id: str | None) -> dict[str, Any]:
    if not agent_id:
        return {"system_prompt": conversations.DEFAULT_SYSTEM, "model": {}, "tools": None, "max_steps": None}
    try:
        agent = await get_json(attempt, f"/v1/agents/{agent_id}")
    except PeerFailure as exc:
        raise TaskFailure("agent_unavailable", f"the agent {agent_id}: {exc.message}", exc.retryable) from exc
    if agent.get("status") not in (None, "active"):
        raise TaskFailure("agent_inactive", f"the agent {agent_id} is {agent.get('status')}", retryable=False)
    return agent


async def _tools(attempt: Attempt, agent_tools: list[str] | None) -> dict[str, dict[str, Any]]:
    """The tools this agent may call in this run: enabled for the tenant, in the agent's list (if it has one) and
    allowed by the goal (if it says)."""
    try:
        listed = await get_json(attempt, "/v1/tools", {"limit": 200})
    except PeerFailure as exc:
        raise TaskFailure("tools_unavailable", f"the tool registry: {exc.message}", exc.retryable) from exc
    usable: dict[str, dict[str, Any]] = {}
    for tool in listed["items"]:
        name = tool["name"]
        if not tool["enabled"]:
            continue
        if agent_tools is not None and name not in agent_tools:
            continue
        if attempt.allowed_tools is not None and name not in attempt.allowed_tools:
            continue
        usable[name] = tool
    return usable


async def _turn(
    attempt: Attempt, agent: dict[str, Any], messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], Usage]:
    model = agent.get("model") or {}
    request: dict[str, Any] = {
        "messages": messages,
        "tools": [
            {"name": t["name"], "description": t["description"][:4000], "parameters": t["input_schema"]}
            for t in tools.values()
        ],
        "purpose": "agent_turn",
        "max_tokens": runtime_settings().runtime_max_tokens,
        "cache": False,
    }
    if model.get("temperature") is not None:
        request["temperature"] = model["temperature"]
    if model.get("name"):
        request["model"] = model["name"]
    else:
        capabilities = sorted({*model.get("capabilities", []), *(["tools"] if tools else [])})
        request["requirements"] = {"capabilities": capabilities, "min_context": model.get("min_context", 0)}
        request["strategy"] = model.get("strategy", "quality")
    if not tools and attempt.definition.get("output_schema"):
        request["response_schema"] = attempt.definition["output_schema"]
    started = time.perf_counter()
    try:
        answer = await chat(attempt, request)
    except PeerFailure as exc:
        raise TaskFailure(exc.kind, exc.message, exc.retryable) from exc
    usage = Usage()
    usage.model_ms = (time.perf_counter() - started) * 1000
    usage.input_tokens = int(answer["usage"]["input_tokens"])
    usage.output_tokens = int(answer["usage"]["output_tokens"])
    usage.cost_micro_usd = int(answer.get("cost_micro_usd", 0))
    attempt.usage.input_tokens += usage.input_tokens
    attempt.usage.output_tokens += usage.output_tokens
    return answer, usage


async def _call_tools(
    attempt: Attempt, calls: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Make a model turn's tool calls (at once) and checkpoint their results as one step."""
    step = calls[0]["step"]
    if step != attempt.next_step:  # the results step always directly follows its model turn
        raise TaskFailure("corrupt_checkpoint", f"expected step {attempt.next_step}, found {step}", retryable=False)
    started = time.perf_counter()
    results = await asyncio.gather(*(_one_call(attempt, n, call, tools) for n, call in enumerate(calls)))
    usage = Usage()
    usage.tool_ms = (time.perf_counter() - started) * 1000
    await attempt.checkpoint("tools", {"results": list(results)}, usage)
    return list(results)


async def _one_call(attempt: Attempt, n: int, call: dict[str, Any], tools: dict[str, dict[str, Any]]) -> dict[str, Any]:
    base = {"id": call["id"], "name": call["name"], "call_id": f"a{attempt.attempt}.{n}"}
    tool = tools.get(call["name"])
    if tool is None:
        return {**base, "status": "failed", "error": {"kind": "unknown_tool", "message": "no such tool is available"}}
    try:
        made = await invoke_tool(
            attempt, call["name"], call["arguments"], call["step"], base["call_id"], float(tool["limits"]["timeout_s"])
        )
    except PeerFailure as exc:
        if exc.retryable or exc.kind in ("awaiting_approval", "suspended"):
            # the platform, not the call, failed (the attempt is retried), or the call waits for a human or for a
            # suspension to be lifted (the task waits with it)
            raise failure_of(exc) from exc
        return {**base, "status": "failed", "error": {"kind": exc.kind, "message": exc.message}}
    return {
        **base,
        "status": made["status"],
        "output": made.get("output"),
        "error": made.get("error"),
        "duration_ms": made.get("duration_ms"),
        "replayed": made.get("replayed", False),
    }


def _output(content: str) -> dict[str, Any]:
    """The task's output: the final answer's JSON object when it is one, else the text."""
    text = content.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            pass
        else:
            if isinstance(value, dict):
                return value
    return {"text": content}
