"""The Ollama adapter against a loopback server speaking Ollama's native `/api/chat` and `/api/embed`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
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
from strata_model_gateway.providers.ollama import OllamaProvider
from tests.support.provider_calls import collect, failure
from tests.support.provider_servers import FakeOllama, FakeToolCall, Reply, embedding_for

MODEL = "llama3.2"
WEATHER = Tool(
    name="get_weather",
    description="The current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
}


def ask(*messages: Message, **options: Any) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=messages or (Message("user", "Hello?"),), **options)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    with FakeOllama(known_models=(MODEL, "nomic-embed-text")) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOllama) -> FakeOllama:
    server.reset()
    return server


@pytest.fixture
async def provider(fake: FakeOllama) -> AsyncIterator[OllamaProvider]:
    adapter = OllamaProvider("ollama-test", fake.url)
    yield adapter
    await adapter.aclose()


async def test_request_carries_the_conversation_tools_format_and_options_in_ollama_shapes(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    # GIVEN a conversation with a tool round-trip whose result does not name its tool
    call = ToolCall(id="call_0", name="get_weather", arguments={"city": "Paris"})
    request = ask(
        Message("system", "Be brief."),
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '{"celsius": 11}', tool_call_id="call_0"),
        tools=(WEATHER,),
        json_schema=ANSWER_SCHEMA,
        temperature=0.2,
        max_tokens=64,
        stop=("\n\n",),
    )
    # WHEN it is sent
    await provider.chat(request)
    # THEN the server saw Ollama's shapes: argument objects, tool_name found from the call, format, options
    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/api/chat")
    assert sent.body == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
            },
            {"role": "tool", "content": '{"celsius": 11}', "tool_name": "get_weather"},
        ],
        "stream": False,
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
        "format": ANSWER_SCHEMA,
        "options": {"temperature": 0.2, "num_predict": 64, "stop": ["\n\n"]},
    }


async def test_plain_request_sends_no_empty_options(fake: FakeOllama, provider: OllamaProvider) -> None:
    await provider.chat(ask())
    assert fake.requests[0].body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hello?"}],
        "stream": False,
    }


@pytest.mark.parametrize("suffix", ["/", "/api"])
async def test_base_url_variants_reach_the_same_endpoint(fake: FakeOllama, suffix: str) -> None:
    adapter = OllamaProvider("ollama-test", fake.url + suffix)
    try:
        await adapter.chat(ask())
    finally:
        await adapter.aclose()
    assert fake.requests[0].path == "/api/chat"


async def test_plain_answer_with_usage(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(text="Paris is 11 °C.", prompt_tokens=26, completion_tokens=9))
    result = await provider.chat(ask())
    assert result.content == "Paris is 11 °C."
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cached_tokens) == (26, 9, 0)
    assert result.raw_model == MODEL


async def test_length_done_reason_is_length(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(text="Paris is", finish_reason="length"))
    assert (await provider.chat(ask(max_tokens=2))).finish_reason == "length"


async def test_tool_calls_get_ids_and_object_or_text_arguments(fake: FakeOllama, provider: OllamaProvider) -> None:
    # GIVEN calls without ids (as Ollama sends them), one with an id, one with arguments as JSON text
    fake.script(
        Reply(
            tool_calls=(
                FakeToolCall("get_weather", {"city": "Paris"}),
                FakeToolCall("get_weather", '{"city": "Oslo"}'),
                FakeToolCall("get_weather", {"city": "Rome"}, id="call_x7"),
            )
        )
    )
    # WHEN answered
    result = await provider.chat(ask(tools=(WEATHER,)))
    # THEN each is normalised, ids synthesised where absent, and the answer finished by calling tools
    assert result.tool_calls == (
        ToolCall(id="call_0", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"}),
        ToolCall(id="call_x7", name="get_weather", arguments={"city": "Rome"}),
    )
    assert result.finish_reason == "tool_calls"


@pytest.mark.parametrize("arguments", ["{city: Paris}", '["Paris"]', "Paris"])
async def test_tool_call_arguments_that_are_not_a_json_object_are_malformed(
    fake: FakeOllama, provider: OllamaProvider, arguments: str
) -> None:
    fake.script(Reply(tool_calls=(FakeToolCall("get_weather", arguments),)))
    error = await failure(provider, ask(tools=(WEATHER,)))
    assert error.kind == "malformed"
    assert error.retryable


async def test_json_schema_answer_is_the_content(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(json_answer={"city": "Paris", "celsius": 11}))
    result = await provider.chat(ask(json_schema=ANSWER_SCHEMA))
    assert json.loads(result.content) == {"city": "Paris", "celsius": 11}
    assert fake.requests[0].body["format"] == ANSWER_SCHEMA


async def test_stream_yields_deltas_then_one_done_chunk_with_usage(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(text="It is eleven degrees in Paris.", prompt_tokens=30, completion_tokens=8))
    chunks = await collect(provider, ask())
    *deltas, last = chunks
    assert len(deltas) > 1
    assert "".join(c.delta for c in deltas) == "It is eleven degrees in Paris."
    assert not any(c.done for c in deltas)
    assert last.done
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (30, 8)
    assert fake.requests[0].body["stream"] is True


async def test_stream_passes_tool_calls_on_and_finishes_with_tool_calls(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    fake.script(
        Reply(
            tool_calls=(FakeToolCall("get_weather", {"city": "Paris"}), FakeToolCall("get_weather", {"city": "Oslo"}))
        )
    )
    chunks = await collect(provider, ask(tools=(WEATHER,)))
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert calls == [
        ToolCall(id="call_0", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"}),
    ]
    assert chunks[-1].done
    assert chunks[-1].finish_reason == "tool_calls"


async def test_stream_with_malformed_tool_call_arguments_fails_malformed(
    fake: FakeOllama, provider: OllamaProvider
) -> None:
    fake.script(Reply(tool_calls=(FakeToolCall("get_weather", "{city: Paris}"),)))
    error = await failure(provider, ask(tools=(WEATHER,)), stream=True)
    assert error.kind == "malformed"


@pytest.mark.parametrize("cleanly", [False, True], ids=["connection-dropped", "body-ended-early"])
async def test_stream_cut_mid_way_is_a_cut(fake: FakeOllama, provider: OllamaProvider, cleanly: bool) -> None:
    # GIVEN a server that stops after two lines, before the done line
    fake.script(Reply(text="one two three four five six", cut_after=2, cut_cleanly=cleanly))
    # WHEN streaming
    received: list[StreamChunk] = []
    error = await failure(provider, ask(), stream=True, received=received)
    # THEN what arrived was passed on, and the end is a retryable cut
    assert "".join(c.delta for c in received) == "one two "
    assert not any(c.done for c in received)
    assert error.kind == "cut"
    assert error.retryable


async def test_slow_answer_times_out(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(delay_s=30))
    started = time.monotonic()
    error = await failure(provider, ask(timeout_s=0.3))
    assert error.kind == "timeout"
    assert time.monotonic() - started < 5


async def test_stream_stalling_mid_answer_times_out(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(text="one two three", chunk_delay_s=30))
    error = await failure(provider, ask(timeout_s=0.3), stream=True)
    assert error.kind == "timeout"


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_rate_limit_carries_retry_after(fake: FakeOllama, provider: OllamaProvider, stream: bool) -> None:
    fake.script(Reply(status=429, error="too many requests", retry_after="3"))
    error = await failure(provider, ask(), stream=stream)
    assert (error.kind, error.status, error.retry_after_s) == ("rate_limited", 429, 3.0)
    assert "too many requests" in str(error)


async def test_server_error_is_unavailable(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(status=500, error="llama runner process has terminated: exit status 2"))
    error = await failure(provider, ask())
    assert (error.kind, error.status) == ("unavailable", 500)
    assert "llama runner process has terminated" in str(error)


async def test_bad_request_carries_ollamas_message(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(status=400, error='invalid format: expected "json" or a valid JSON schema'))
    error = await failure(provider, ask(json_schema={"type": "nonsense"}))
    assert (error.kind, error.status) == ("bad_request", 400)
    assert not error.retryable
    assert 'invalid format: expected "json"' in str(error)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_unknown_model_is_a_bad_request(provider: OllamaProvider, stream: bool) -> None:
    error = await failure(
        provider, ChatRequest(model="no-such-model", messages=(Message("user", "Hi"),)), stream=stream
    )
    assert (error.kind, error.status) == ("bad_request", 404)
    assert 'model "no-such-model" not found' in str(error)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_connection_refused_is_unavailable(stream: bool) -> None:
    sock = bind_loopback()  # bound but never listening: connections are refused
    adapter = OllamaProvider("ollama-test", f"http://127.0.0.1:{port_of(sock)}")
    try:
        error = await failure(adapter, ask(), stream=stream)
    finally:
        sock.close()
        await adapter.aclose()
    assert error.kind == "unavailable"


async def test_embeddings_in_input_order_with_usage(fake: FakeOllama, provider: OllamaProvider) -> None:
    fake.script(Reply(prompt_tokens=6))
    result = await provider.embed("nomic-embed-text", ["first text", "second text"])
    assert result.vectors == (embedding_for("first text"), embedding_for("second text"))
    assert result.usage.input_tokens == 6
    (sent,) = fake.requests
    assert (sent.path, sent.body) == (
        "/api/embed",
        {"model": "nomic-embed-text", "input": ["first text", "second text"]},
    )


async def test_embeddings_of_an_unknown_model_are_a_bad_request(provider: OllamaProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.embed("no-such-model", ["x"])
    assert caught.value.kind == "bad_request"
