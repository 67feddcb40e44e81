"""Driving a provider adapter in tests: collect a stream, or run a call to the error it ends with."""

from __future__ import annotations

import pytest

from strata_model_gateway.providers.base import ChatRequest, Provider, ProviderError, StreamChunk


async def collect(provider: Provider, request: ChatRequest) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(request)]


async def call(provider: Provider, request: ChatRequest, stream: bool, into: list[StreamChunk]) -> None:
    if stream:
        async for chunk in provider.stream(request):
            into.append(chunk)
    else:
        await provider.chat(request)


async def failure(
    provider: Provider, request: ChatRequest, *, stream: bool = False, received: list[StreamChunk] | None = None
) -> ProviderError:
    """The error the call ends with; `received` collects the chunks streamed before it."""
    with pytest.raises(ProviderError) as caught:
        await call(provider, request, stream, received if received is not None else [])
    return caught.value
