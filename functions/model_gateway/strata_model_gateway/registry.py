"""The provider endpoints this deployment can call, built once per execution environment from the settings.

Adapters are imported only when their provider is first used (boto3 for Bedrock, llama.cpp for the embedded
model stay out of the cold start). The embedded model is offered when it is installed and not switched off.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

from strata_model_gateway.providers.base import Provider, ProviderError
from strata_model_gateway.settings import ProviderConfig, provider_configs, settings

EMBEDDED = "embedded"
_instances: dict[str, Provider] = {}


@lru_cache
def embedded_available() -> bool:
    return settings().embedded_model_enabled and importlib.util.find_spec("llama_cpp") is not None


def configured() -> dict[str, ProviderConfig]:
    """Provider name -> its configuration (the embedded model included when available)."""
    found = {c.name: c for c in provider_configs()}
    if embedded_available() and EMBEDDED not in found:
        found[EMBEDDED] = ProviderConfig(name=EMBEDDED, kind="embedded")
    return found


def _secret(secret_id: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(secret_id, max_age=300))


def _build(config: ProviderConfig) -> Provider:
    if config.kind == "openai":
        from strata_model_gateway.providers.openai_compat import OpenAICompatibleProvider

        key = config.api_key or (_secret(config.api_key_secret_id) if config.api_key_secret_id else None)
        return OpenAICompatibleProvider(config.name, config.base_url or "https://api.openai.com", key)
    if config.kind == "ollama":
        from strata_model_gateway.providers.ollama import OllamaProvider

        return OllamaProvider(config.name, config.base_url or "http://127.0.0.1:11434")
    if config.kind == "bedrock":
        from strata_model_gateway.providers.bedrock import BedrockProvider

        return BedrockProvider(config.name, config.region or settings().aws_region, config.endpoint_url)
    from strata_model_gateway.providers.embedded import EmbeddedProvider

    return EmbeddedProvider()


def provider(name: str) -> Provider:
    """The provider instance named `name` (created on first use)."""
    instance = _instances.get(name)
    if instance is None:
        config = configured().get(name)
        if config is None:
            raise ProviderError("unavailable", f"no provider {name!r} is configured in this deployment")
        instance = _instances[name] = _build(config)
    return instance


async def reset() -> None:
    """Close and forget every provider (tests, configuration changes)."""
    for instance in list(_instances.values()):
        await instance.aclose()
    _instances.clear()
    embedded_available.cache_clear()
