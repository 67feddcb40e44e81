"""The model gateway through the local cloud, against loopback servers speaking OpenAI's and Ollama's wire formats:
routing, fallbacks, breakers, structured output with repair, caching, metering, budgets (no overspend under
concurrency), streaming with mid-way fallback, the OpenAI-compatible alias and embeddings."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Platform, Providers
from tests.e2e.test_platform import assert_problem
from tests.support.provider_servers import GREETING, FakeToolCall, Reply, embedding_for

pytestmark = pytest.mark.e2e

GPT = {
    "provider": "openai",
    "provider_model": "gpt-4o-mini",
    "context_window": 128000,
    "capabilities": ["chat", "tools", "json", "streaming", "embeddings"],
    "input_usd_per_mtok": 1,
    "output_usd_per_mtok": 2,
    "latency_class": "standard",
    "quality": 0.9,
}
LLAMA = {
    "provider": "ollama",
    "provider_model": "llama3.2",
    "context_window": 8192,
    "capabilities": ["chat", "tools", "json", "streaming"],
    "latency_class": "fast",
    "quality": 0.4,
}
FLAKY = {**GPT, "provider": "flaky", "provider_model": "flaky-1"}
HELLO = [{"role": "user", "content": "Say hello."}]


async def _tenant(platform: Platform, providers: Providers) -> dict[str, str]:
    """A fresh tenant with its catalogue: gpt (openai), llama (ollama), flaky (openai, breaker tests)."""
    providers.reset()
    headers = platform.auth((await platform.new_tenant(f"models-{uuid.uuid4().hex[:8]}"))["api_key"])
    for name, spec in (("gpt", GPT), ("llama", LLAMA), ("flaky", FLAKY)):
        made = await platform.api.post("/v1/models", json={"name": name, **spec}, headers=headers)
        assert made.status_code == 201, made.text
    return headers


async def _chat(platform: Platform, headers: dict[str, str], **body: Any) -> Any:
    return await platform.api.post("/v1/models/chat", json={"messages": HELLO, "cache": False, **body}, headers=headers)


async def _usage(platform: Platform, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(50):
        answer = await platform.api.get("/v1/models/usage", params={"group_by": "model"}, headers=headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["totals"]["calls"]:
            return body
        await asyncio.sleep(0.1)
    return body


async def test_a_named_model_answers_and_the_call_is_metered_at_catalogue_prices(
    platform: Platform, providers: Providers
) -> None:
    headers = await _tenant(platform, providers)
    answer = await _chat(platform, headers, model="gpt", max_tokens=50, temperature=0.2, purpose="test")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model"], body["provider"], body["content"]) == ("gpt", "openai", GREETING)
    assert body["usage"] == {"input_tokens": 11, "output_tokens": 7, "cached_tokens": 0}
    assert body["cost_micro_usd"] == 11 * 1 + 7 * 2
    assert [a["outcome"] for a in body["attempts"]] == ["ok"]
    # what the provider was sent
    sent = providers.openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello."}]
    assert (sent.body["max_tokens"], sent.body["temperature"]) == (50, 0.2)
    usage = await _usage(platform, headers)
    assert usage["groups"] == [
        {
            "key": "gpt",
            "calls": 1,
            "cache_hits": 0,
            "input_tokens": 11,
            "output_tokens": 7,
            "cached_tokens": 0,
            "cost_micro_usd": 25,
            "p50_latency_ms": usage["groups"][0]["p50_latency_ms"],
        }
    ]


async def test_each_call_is_recorded_once_with_its_event_even_when_redelivered(
    platform: Platform, providers: Providers
) -> None:
    import redis.asyncio as aioredis

    from strata import spool
    from strata_model_gateway.metering import MODEL_USAGE

    headers = await _tenant(platform, providers)
    assert (await _chat(platform, headers, model="gpt", purpose="once")).status_code == 200
    # the scheduled flush (an invocation of its own; the local cloud also runs it on its schedule) moves the record
    # into Postgres and publishes its event
    await platform.cloud.invoke("ModelGatewayFunction", {"schedule": "flush_model_usage"})
    for _ in range(100):
        events = await platform.api.get("/v1/events", params={"detail_type": "ModelUsageRecorded"}, headers=headers)
        if events.json()["items"]:
            break
        await asyncio.sleep(0.1)
    [event] = events.json()["items"]
    detail = event["detail"]
    assert (detail["model"], detail["purpose"], detail["cost_micro_usd"]) == ("gpt", "once", 25)
    # the same record queued again, as a flush that crashed before acknowledging would leave it
    row = {
        "usage_id": detail["usage_id"],
        "tenant_id": detail["tenant_id"],
        "model_name": "gpt",
        "provider": "openai",
        "provider_model": "gpt-4o-mini",
        "input_tokens": 11,
        "output_tokens": 7,
        "cost_micro_usd": 25,
        "latency_ms": 1,
    }
    client = aioredis.from_url(platform.cloud.services.redis_url, decode_responses=True)
    try:
        await client.xadd(MODEL_USAGE.stream, {spool.FIELD: json.dumps([row, detail["correlation_id"]])})
        await platform.cloud.invoke("ModelGatewayFunction", {"schedule": "flush_model_usage"})
        for _ in range(50):  # read and acknowledged, by this flush or the schedule's
            if not await client.xlen(MODEL_USAGE.stream):
                break
            await asyncio.sleep(0.1)
        assert await client.xlen(MODEL_USAGE.stream) == 0
    finally:
        await client.aclose()
    assert (await _usage(platform, headers))["totals"]["calls"] == 1
    again = await platform.api.get("/v1/events", params={"detail_type": "ModelUsageRecorded"}, headers=headers)
    assert len(again.json()["items"]) == 1


async def test_requirements_route_by_strategy(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    cheapest = await _chat(platform, headers, requirements={"capabilities": ["tools"]}, strategy="cheapest")
    assert cheapest.json()["model"] == "llama"  # free beats 1/2 USD per million
    best = await _chat(platform, headers, requirements={"min_quality": 0.5}, strategy="quality")
    assert best.json()["model"] in ("gpt", "flaky")
    too_big = await _chat(platform, headers, requirements={"min_context": 1_000_000})
    assert "requirements" in assert_problem(too_big, 422)["detail"]
    vision = await _chat(platform, headers, requirements={"capabilities": ["vision"]})
    assert_problem(vision, 422)
    assert_problem(await _chat(platform, headers, model="no-such-model"), 422)


async def test_a_failing_model_is_retried_then_the_fallback_answers(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    providers.openai.script(Reply(status=500, error="overloaded"), Reply(status=503, error="still overloaded"))
    answer = await _chat(platform, headers, model="gpt", fallbacks=["llama"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "llama"
    assert [(a["model"], a["outcome"]) for a in body["attempts"]] == [
        ("gpt", "unavailable"),
        ("gpt", "unavailable"),
        ("llama", "ok"),
    ]
    # a caller's mistake is not retried, and every model refusing it is a 502 with the attempts
    providers.openai.script(Reply(status=400, error="bad messages"))
    refused = await _chat(platform, headers, model="gpt")
    problem = assert_problem(refused, 502)
    assert problem["attempts"][0]["outcome"] == "bad_request"
    assert "bad messages" in problem["attempts"][0]["detail"]


async def test_the_breaker_opens_on_a_failing_provider_and_closes_after_a_good_probe(
    platform: Platform, providers: Providers
) -> None:
    headers = await _tenant(platform, providers)
    providers.flaky.default = Reply(status=500, error="down")
    outcomes: list[str] = []
    for _ in range(4):
        answer = await _chat(platform, headers, model="flaky", fallbacks=["llama"])
        assert answer.status_code == 200, answer.text
        outcomes += [a["outcome"] for a in answer.json()["attempts"] if a["model"] == "flaky"]
    assert outcomes[:3] == ["unavailable"] * 3, outcomes  # breaker_failures = 3 in this cloud
    assert outcomes[-1] == "breaker_open", outcomes
    calls_while_open = len(providers.flaky.requests)
    await _chat(platform, headers, model="flaky", fallbacks=["llama"])
    assert len(providers.flaky.requests) == calls_while_open  # open: the provider is not called at all
    providers.flaky.default = Reply()
    await asyncio.sleep(1.1)  # breaker_open_s = 1: the next call is the half-open probe
    probe = await _chat(platform, headers, model="flaky")
    assert probe.status_code == 200, probe.text
    assert probe.json()["model"] == "flaky"
    again = await _chat(platform, headers, model="flaky")
    assert [a["outcome"] for a in again.json()["attempts"]] == ["ok"]


async def test_structured_output_is_validated_and_repaired_once(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    providers.openai.script(Reply(json_answer={"wrong": 1}), Reply(json_answer={"answer": "blue"}))
    answer = await _chat(platform, headers, model="gpt", response_schema=schema)
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.json()["content"]) == {"answer": "blue"}
    assert answer.json()["usage"]["input_tokens"] == 22  # both calls are billed
    repair = providers.openai.requests[-1].body
    assert repair["response_format"]["json_schema"]["schema"] == schema
    assert "invalid" in repair["messages"][-1]["content"]
    # invalid twice: that model failed; the next one answers
    providers.openai.script(Reply(json_answer=[1]), Reply(text="not json"))
    providers.ollama.script(Reply(json_answer={"answer": "green"}))
    fallback = await _chat(platform, headers, model="gpt", fallbacks=["llama"], response_schema=schema)
    assert [a["outcome"] for a in fallback.json()["attempts"]] == ["invalid_output", "ok"]
    # a tool call whose arguments do not fit the tool's parameters is repaired the same way
    tool = {
        "name": "lookup",
        "description": "Look a city up",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    providers.openai.script(
        Reply(tool_calls=(FakeToolCall("lookup", {"town": "Oslo"}),)),
        Reply(tool_calls=(FakeToolCall("lookup", {"city": "Oslo"}),)),
    )
    called = await _chat(platform, headers, model="gpt", tools=[tool])
    assert called.json()["tool_calls"][0]["name"] == "lookup"
    assert called.json()["tool_calls"][0]["arguments"] == {"city": "Oslo"}
    bad_schema = await _chat(platform, headers, model="gpt", response_schema={"type": "nonsense"})
    assert_problem(bad_schema, 422)


async def test_identical_requests_are_answered_from_the_cache(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    question = [{"role": "user", "content": f"cache me {uuid.uuid4()}"}]
    first = await _chat(platform, headers, model="gpt", messages=question, cache=True)
    second = await _chat(platform, headers, model="gpt", messages=question, cache=True)
    assert (first.json()["cache"], second.json()["cache"]) == ("miss", "hit")
    assert second.json()["content"] == first.json()["content"]
    assert second.json()["cost_micro_usd"] == 0
    assert len(providers.openai.requests) == 1
    opted_out = await _chat(platform, headers, model="gpt", messages=question, cache=False)
    assert opted_out.json()["cache"] == "off"
    assert len(providers.openai.requests) == 2


async def test_budgets_are_never_overspent_under_concurrent_calls(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    # each call holds its worst case (prompt estimate + 20 output tokens at 2 USD/Mtok) and spends 25
    budget = await platform.api.post(
        "/v1/budgets", json={"scope": "tenant", "period": "day", "limit_micro_usd": 250}, headers=headers
    )
    assert budget.status_code == 201, budget.text
    answers = await asyncio.gather(*(_chat(platform, headers, model="gpt", max_tokens=20) for _ in range(16)))
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 402]
    assert len(ok) + len(refused) == 16, [a.text for a in answers if a.status_code not in (200, 402)]
    assert ok
    assert refused
    spent = sum(a.json()["cost_micro_usd"] for a in ok)
    assert spent <= 250
    problem = assert_problem(refused[0], 402)
    assert problem["budget_id"] == budget.json()["budget_id"]
    assert len(providers.openai.requests) == len(ok)  # a refused call never reached the provider
    current = await platform.api.get(f"/v1/budgets/{budget.json()['budget_id']}", headers=headers)
    assert current.json()["spent_micro_usd"] == spent
    for _ in range(100):
        events = await platform.api.get("/v1/events", params={"detail_type": "BudgetExceeded"}, headers=headers)
        if events.json()["items"]:
            break
        await asyncio.sleep(0.1)
    assert len(events.json()["items"]) == 1  # announced once per budget and window
    raised = await platform.api.patch(
        f"/v1/budgets/{budget.json()['budget_id']}", json={"limit_micro_usd": 10_000}, headers=headers
    )
    assert raised.status_code == 200
    assert (await _chat(platform, headers, model="gpt", max_tokens=20)).status_code == 200


async def test_a_run_budget_caps_only_that_run(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    run_id = str(uuid.uuid4())
    made = await platform.api.post(
        "/v1/budgets",
        json={"scope": "run", "scope_id": run_id, "period": "total", "limit_micro_usd": 30},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert (await _chat(platform, headers, model="gpt", max_tokens=5, run_id=run_id)).status_code == 200
    assert_problem(await _chat(platform, headers, model="gpt", max_tokens=5, run_id=run_id), 402)
    assert (await _chat(platform, headers, model="gpt", max_tokens=5, run_id=str(uuid.uuid4()))).status_code == 200
    bad = await platform.api.post(
        "/v1/budgets",
        json={"scope": "task", "scope_id": run_id, "period": "total", "limit_micro_usd": 1},
        headers=headers,
    )
    assert_problem(bad, 422)


def _events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


async def test_a_stream_that_breaks_mid_way_falls_back(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    whole = await _chat(platform, headers, model="gpt", stream=True)
    assert whole.headers["content-type"].startswith("text/event-stream")
    events = _events(whole.text)
    assert "".join(d["delta"] for e, d in events if e == "delta") == GREETING
    assert events[-1][0] == "done"
    assert events[-1][1]["usage"]["output_tokens"] == 7

    providers.openai.script(Reply(text="one two three four five", cut_after=2))
    cut = await _chat(platform, headers, model="gpt", fallbacks=["llama"], stream=True)
    events = _events(cut.text)
    kinds = [e for e, _ in events]
    assert "fallback" in kinds
    after = kinds.index("fallback")
    assert "".join(d["delta"] for e, d in events[after:] if e == "delta") == GREETING
    assert events[-1][0] == "done"
    assert [a["outcome"] for a in events[-1][1]["attempts"]] == ["cut", "ok"]


async def test_openai_clients_work_through_the_alias(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    answer = await platform.api.post(
        "/v1/chat/completions",
        json={"model": "gpt", "messages": [{"role": "developer", "content": "Be brief."}, *HELLO], "top_p": 1},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": GREETING}
    assert body["usage"]["total_tokens"] == 18
    providers.openai.script(Reply(tool_calls=(FakeToolCall("lookup", {"city": "Oslo"}),)))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    called = await platform.api.post(
        "/v1/chat/completions", json={"model": "gpt", "messages": HELLO, "tools": tools}, headers=headers
    )
    call = called.json()["choices"][0]["message"]["tool_calls"][0]
    assert (call["type"], call["function"]["name"], json.loads(call["function"]["arguments"])) == (
        "function",
        "lookup",
        {"city": "Oslo"},
    )
    streamed = await platform.api.post(
        "/v1/chat/completions", json={"model": "gpt", "messages": HELLO, "stream": True}, headers=headers
    )
    lines = [line.removeprefix("data: ") for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == GREETING
    assert_problem(
        await platform.api.post(
            "/v1/chat/completions", json={"model": "gpt", "messages": HELLO, "n": 2}, headers=headers
        ),
        422,
    )


async def test_embeddings_are_served_and_metered(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    answer = await platform.api.post(
        "/v1/models/embeddings", json={"model": "gpt", "input": ["alpha", "beta"]}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    vectors = [d["embedding"] for d in answer.json()["data"]]
    assert vectors == [list(embedding_for("alpha")), list(embedding_for("beta"))]
    refused = await platform.api.post("/v1/models/embeddings", json={"model": "llama", "input": "x"}, headers=headers)
    assert "embeddings" in assert_problem(refused, 422)["detail"]


async def test_the_catalogue_is_managed_through_the_api(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    listed = await platform.api.get("/v1/models", headers=headers)
    assert listed.status_code == 200, listed.text
    names = {m["name"]: m for m in listed.json()["items"]}
    assert {"gpt", "llama", "flaky"} <= set(names)
    model_id = names["gpt"]["model_id"]
    changed = await platform.api.patch(
        f"/v1/models/{model_id}", json={"enabled": False}, headers={**headers, "if-match": '"v1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False
    assert_problem(await _chat(platform, headers, model="gpt"), 422)  # disabled
    assert_problem(
        await platform.api.post("/v1/models", json={"name": "x", **GPT, "provider": "nowhere"}, headers=headers), 409
    )
    assert_problem(await platform.api.post("/v1/models", json={"name": "gpt", **GPT}, headers=headers), 409)
    assert (await platform.api.delete(f"/v1/models/{model_id}", headers=headers)).status_code == 204
    assert_problem(await platform.api.get(f"/v1/models/{model_id}", headers=headers), 404)
    reader = await platform.api.post("/v1/api-keys", json={"name": "r", "scopes": ["models:read"]}, headers=headers)
    assert_problem(await _chat(platform, platform.auth(reader.json()["api_key"]), model="llama"), 403)


async def test_a_similar_question_is_answered_from_the_semantic_cache(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    embedder = {**GPT, "capabilities": ["embeddings"]}
    made = await platform.api.post("/v1/models", json={"name": "semantic-embedder", **embedder}, headers=headers)
    assert made.status_code == 201, made.text
    first = await _chat(
        platform, headers, model="gpt", messages=[{"role": "user", "content": "What is 2+2?"}], cache=True
    )
    assert first.json()["cache"] == "miss"
    similar = await _chat(
        platform, headers, model="gpt", messages=[{"role": "user", "content": "what's two plus two"}], cache=True
    )
    assert similar.json()["cache"] == "semantic_hit"
    assert similar.json()["content"] == first.json()["content"]
    chats = [r for r in providers.openai.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == 1  # the similar question never reached the model
    # another system prompt is another shape of request: no semantic match across it
    other = await _chat(
        platform,
        headers,
        model="gpt",
        messages=[{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "What is 2+2?"}],
        cache=True,
    )
    assert other.json()["cache"] == "miss"


async def test_model_calls_are_limited_per_minute_by_the_tenants_tier(platform: Platform, providers: Providers) -> None:
    headers = await _tenant(platform, providers)
    tenant_id = (await platform.api.get("/v1/tenant", headers=headers)).json()["tenant_id"]
    operator = platform.auth((await platform.new_tenant(f"op-{uuid.uuid4().hex[:8]}", ["platform:admin"]))["api_key"])
    moved = await platform.api.patch(f"/v1/tenants/{tenant_id}", json={"tier": "e2e-slow"}, headers=operator)
    assert moved.status_code == 200, moved.text
    # a key minted after the change carries the new tier (decisions are cached per key)
    key = await platform.api.post("/v1/api-keys", json={"name": "slow", "scopes": ["models:invoke"]}, headers=headers)
    slow = platform.auth(key.json()["api_key"])
    answers = [await _chat(platform, slow, model="llama") for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    problem = assert_problem(answers[3], 429)
    assert problem["limit"] == "requests"
    assert int(answers[3].headers["retry-after"]) >= 1
    # the key's own request limit (burst 10) is charged in the same script as the model limits, all or nothing:
    # three answered calls took three; the model-limited one took none
    assert (answers[0].headers["ratelimit-limit"], answers[2].headers["ratelimit-remaining"]) == ("10", "7")
    # a request the route refuses before calling the gateway is charged all the same (after it is answered)
    invalid = [await platform.api.post("/v1/models/chat", json={"messages": []}, headers=slow) for _ in range(7)]
    assert {a.status_code for a in invalid} == {422}
    over = await _chat(platform, slow, model="llama")
    problem = assert_problem(over, 429)
    assert "key or tenant" in problem["detail"]
    assert "limit" not in problem
    assert over.headers["ratelimit-remaining"] == "0"
