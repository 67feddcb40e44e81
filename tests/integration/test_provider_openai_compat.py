"""The OpenAI-compatible adapter against a loopback server speaking OpenAI's chat-completions wire format."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from strata_cli.localcloud.servers import bind_loopback, port_of
from strata_model_gateway.providers.base import (
    ChatRequest,
    Message,
    ProviderError,
    StreamChunk,
    Tool,
    ToolCall,
)
from strata_model_gateway.providers.openai_compat import OpenAICompatibleProvider
from tests.support.provider_calls import collect, failure
from tests.support.provider_servers import FakeOpenAI, FakeToolCall, Reply, embedding_for

API_KEY = "sk-test-0123456789"
WEATHER = Tool(
    name="get_weather",
    description="The current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}


def ask(*messages: Message, **options: Any) -> ChatRequest:
    return ChatRequest(model="gpt-4o-mini", messages=messages or (Message("user", "Hello?"),), **options)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture
async def provider(fake: FakeOpenAI) -> AsyncIterator[OpenAICompatibleProvider]:
    adapter = OpenAICompatibleProvider("openai-test", fake.url + "/v1", API_KEY, extra_headers={"x-team": "strata"})
    yield adapter
    await adapter.aclose()


async def test_request_carries_the_conversation_tools_and_options_in_openai_shapes(
    fake: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    # GIVEN a conversation with a tool round-trip, a tool, sampling options and an answer schema
    call = ToolCall(id="call_abc", name="get_weather", arguments={"city": "Paris"})
    request = ask(
        Message("system", "Be brief."),
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '{"celsius": 11}', tool_call_id="call_abc", name="get_weather"),
        tools=(WEATHER,),
        json_schema=ANSWER_SCHEMA,
        temperature=0.2,
        max_tokens=64,
        stop=("\n\n",),
    )
    # WHEN it is sent
    await provider.chat(request)
    # THEN the server saw exactly OpenAI's request shapes
    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["x-team"] == "strata"
    assert sent.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_abc", "content": '{"celsius": 11}'},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "The current weather in a city",
                    "parameters": WEATHER.parameters,
                },
            }
        ],
        "temperature": 0.2,
        "max_tokens": 64,
        "stop": ["\n\n"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA, "strict": True},
        },
    }


@pytest.mark.parametrize("suffix", ["", "/", "/v1/"])
async def test_base_url_with_or_without_v1_reaches_the_same_endpoint(fake: FakeOpenAI, suffix: str) -> None:
    adapter = OpenAICompatibleProvider("openai-test", fake.url + suffix, API_KEY)
    try:
        await adapter.chat(ask())
        await adapter.embed("text-embedding-3-small", ["x"])
    finally:
        await adapter.aclose()
    assert [r.path for r in fake.requests] == ["/v1/chat/completions", "/v1/embeddings"]


async def test_plain_answer_with_usage_including_cached_tokens(
    fake: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    fake.script(
        Reply(
            text="Paris is 11 °C.",
            prompt_tokens=1200,
            completion_tokens=9,
            cached_tokens=1024,
            model="gpt-4o-mini-2024-07-18",
        )
    )
    result = await provider.chat(ask())
    assert result.content == "Paris is 11 °C."
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cached_tokens) == (1200, 9, 1024)
    assert result.raw_model == "gpt-4o-mini-2024-07-18"


async def test_length_finish_reason_passes_through(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(text="Paris is", finish_reason="length"))
    assert (await provider.chat(ask(max_tokens=2))).finish_reason == "length"


async def test_tool_calls_are_normalised_with_parsed_arguments(
    fake: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    fake.script(
        Reply(
            tool_calls=(
                FakeToolCall("get_weather", {"city": "Paris"}, id="call_1"),
                FakeToolCall("get_weather", {"city": "Oslo", "units": {"temp": "C"}}, id="call_2"),
            )
        )
    )
    result = await provider.chat(ask(tools=(WEATHER,)))
    assert result.content == ""
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == (
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_2", name="get_weather", arguments={"city": "Oslo", "units": {"temp": "C"}}),
    )


async def test_tool_call_with_empty_arguments_text_is_an_empty_object(
    fake: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    fake.script(Reply(tool_calls=(FakeToolCall("list_cities", "", id="call_1"),)))
    result = await provider.chat(ask())
    assert result.tool_calls == (ToolCall(id="call_1", name="list_cities", arguments={}),)


@pytest.mark.parametrize("arguments", ['{"city": "Par', '["Paris"]', '"Paris"'])
async def test_tool_call_arguments_that_are_not_a_json_object_are_malformed(
    fake: FakeOpenAI, provider: OpenAICompatibleProvider, arguments: str
) -> None:
    fake.script(Reply(tool_calls=(FakeToolCall("get_weather", arguments),)))
    error = await failure(provider, ask(tools=(WEATHER,)))
    assert error.kind == "malformed"
    assert error.retryable
    assert "get_weather" in str(error)


async def test_json_schema_answer_is_the_content(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(json_answer={"city": "Paris", "celsius": 11}))
    result = await provider.chat(ask(json_schema=ANSWER_SCHEMA))
    assert json.loads(result.content) == {"city": "Paris", "celsius": 11}
    assert fake.requests[0].body["response_format"]["json_schema"]["schema"] == ANSWER_SCHEMA


async def test_stream_yields_deltas_then_one_done_chunk_with_usage(
    fake: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    fake.script(Reply(text="It is eleven degrees in Paris.", prompt_tokens=30, completion_tokens=8, cached_tokens=4))
    chunks = await collect(provider, ask())
    *deltas, last = chunks
    assert len(deltas) > 1  # really streamed, piece by piece
    assert "".join(c.delta for c in deltas) == "It is eleven degrees in Paris."
    assert not any(c.done for c in deltas)
    assert last.done
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens, last.usage.cached_tokens) == (30, 8, 4)
    body = fake.requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_stream_assembles_tool_call_deltas_by_index(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    # GIVEN two tool calls whose argument text the server streams in pieces
    fake.script(
        Reply(
            tool_calls=(
                FakeToolCall("get_weather", {"city": "Paris"}, id="call_p"),
                FakeToolCall("get_weather", {"city": "Oslo"}, id="call_o"),
            )
        )
    )
    # WHEN streamed
    chunks = await collect(provider, ask(tools=(WEATHER,)))
    # THEN each call arrives whole, once, before the done chunk
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert calls == [
        ToolCall(id="call_p", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_o", name="get_weather", arguments={"city": "Oslo"}),
    ]
    assert chunks[-1].done
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].tool_calls == ()


async def test_stream_with_malformed_tool_call_arguments_fails_malformed(
    fake: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    fake.script(Reply(tool_calls=(FakeToolCall("get_weather", "{city: Paris}"),)))
    error = await failure(provider, ask(tools=(WEATHER,)), stream=True)
    assert error.kind == "malformed"


@pytest.mark.parametrize("cleanly", [False, True], ids=["connection-dropped", "body-ended-early"])
async def test_stream_cut_mid_way_is_a_cut(fake: FakeOpenAI, provider: OpenAICompatibleProvider, cleanly: bool) -> None:
    # GIVEN a server that stops after three events, before finish_reason and [DONE]
    fake.script(Reply(text="one two three four five six", cut_after=3, cut_cleanly=cleanly))
    # WHEN streaming
    received: list[StreamChunk] = []
    error = await failure(provider, ask(), stream=True, received=received)
    # THEN what arrived was passed on, and the end is a retryable cut, never a done chunk
    assert "".join(c.delta for c in received) == "one two "
    assert not any(c.done for c in received)
    assert error.kind == "cut"
    assert error.retryable


async def test_slow_answer_times_out(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(delay_s=30))
    started = time.monotonic()
    error = await failure(provider, ask(timeout_s=0.3))
    assert error.kind == "timeout"
    assert time.monotonic() - started < 5


async def test_stream_stalling_mid_answer_times_out(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(text="one two three", chunk_delay_s=30))
    error = await failure(provider, ask(timeout_s=0.3), stream=True)
    assert error.kind == "timeout"


async def test_rate_limit_carries_retry_after(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(status=429, error="Rate limit reached for gpt-4o-mini", retry_after="7"))
    error = await failure(provider, ask())
    assert (error.kind, error.status, error.retry_after_s) == ("rate_limited", 429, 7.0)
    assert error.retryable
    assert "Rate limit reached" in str(error)


def in_a_minute() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (lambda: (("retry-after-ms", "250"), ("retry-after", "1")), 0.25),
        (lambda: (("retry-after", in_a_minute()),), 60.0),
        (lambda: (("retry-after", "soon"),), None),
    ],
    ids=["milliseconds-first", "http-date", "unreadable"],
)
async def test_retry_after_forms(
    fake: FakeOpenAI,
    provider: OpenAICompatibleProvider,
    headers: Callable[[], tuple[tuple[str, str], ...]],
    expected: float | None,
) -> None:
    fake.script(Reply(status=429, headers=headers()))
    error = await failure(provider, ask())
    assert error.kind == "rate_limited"
    if expected is None:
        assert error.retry_after_s is None
    else:
        assert error.retry_after_s == pytest.approx(expected, abs=2)


async def test_rate_limit_on_a_stream_is_rate_limited(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(status=429, retry_after="1.5"))
    error = await failure(provider, ask(), stream=True)
    assert (error.kind, error.retry_after_s) == ("rate_limited", 1.5)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(fake: FakeOpenAI, provider: OpenAICompatibleProvider, status: int) -> None:
    fake.script(Reply(status=status, error="The server had an error while processing your request."))
    error = await failure(provider, ask())
    assert (error.kind, error.status) == ("unavailable", status)
    assert error.retryable


async def test_bad_request_carries_the_providers_message(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(status=400, error="Invalid schema for response_format 'answer': 'required' is missing"))
    error = await failure(provider, ask(json_schema={"type": "object"}))
    assert (error.kind, error.status) == ("bad_request", 400)
    assert not error.retryable
    assert "Invalid schema for response_format 'answer'" in str(error)


async def test_wrong_api_key_is_an_auth_error(fake: FakeOpenAI) -> None:
    adapter = OpenAICompatibleProvider("openai-test", fake.url, "sk-wrong")
    try:
        error = await failure(adapter, ask())
    finally:
        await adapter.aclose()
    assert (error.kind, error.status) == ("auth", 401)
    assert "Incorrect API key" in str(error)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_connection_refused_is_unavailable(stream: bool) -> None:
    sock = bind_loopback()  # bound but never listening: connections are refused
    adapter = OpenAICompatibleProvider("openai-test", f"http://127.0.0.1:{port_of(sock)}", API_KEY)
    try:
        error = await failure(adapter, ask(), stream=stream)
    finally:
        sock.close()
        await adapter.aclose()
    assert error.kind == "unavailable"
    assert error.retryable


async def test_embeddings_in_input_order_with_usage(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(prompt_tokens=6))
    result = await provider.embed("text-embedding-3-small", ["first text", "second text"])
    assert result.vectors == (embedding_for("first text"), embedding_for("second text"))
    assert result.usage.input_tokens == 6
    (sent,) = fake.requests
    assert sent.path == "/v1/embeddings"
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": ["first text", "second text"],
        "encoding_format": "float",
    }


async def test_embedding_errors_are_classified(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    fake.script(Reply(status=503, error="overloaded"))
    with pytest.raises(ProviderError) as caught:
        await provider.embed("text-embedding-3-small", ["x"])
    assert caught.value.kind == "unavailable"


async def test_client_is_reopened_after_aclose(fake: FakeOpenAI, provider: OpenAICompatibleProvider) -> None:
    await provider.chat(ask())
    await provider.aclose()
    assert (await provider.chat(ask())).content
    assert len(fake.requests) == 2


async def test_tool_message_without_call_id_is_refused_before_sending(
    fake: FakeOpenAI, provider: OpenAICompatibleProvider
) -> None:
    error = await failure(provider, ask(Message("user", "Hi"), Message("tool", "11 degrees")))
    assert error.kind == "bad_request"
    assert fake.requests == []
