"""L01's logic: creating agents (with their DID) and archiving events."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from strata.errors import ConflictError
from strata.events.entities import AgentCreated
from strata.events.outbox import unit_of_work
from strata_data import store


def mint_did(agent_id: UUID) -> str:
    """A decentralised identifier for an agent, stable for its lifetime."""
    return f"did:strata:agent:{agent_id}"


async def create_agent(tenant_id: UUID, name: str, capabilities: list[str], correlation_id: str) -> dict[str, Any]:
    agent_id = uuid4()
    did = mint_did(agent_id)
    from asyncpg import UniqueViolationError

    try:
        async with unit_of_work(tenant_id) as uow:
            agent = await store.insert_agent(uow.conn, tenant_id, agent_id, name, did, capabilities)
            await uow.emit(
                AgentCreated(tenant_id=tenant_id, correlation_id=correlation_id, agent_id=agent_id, name=name, did=did)
            )
    except UniqueViolationError as exc:
        raise ConflictError(f"an agent named {name!r} already exists") from exc
    return agent
