"""L01's logic for agents: a DID on create, a status lifecycle, versioned updates, soft delete, a read cache."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from strata import cache, db
from strata.errors import ConflictError, NotFoundError
from strata.etags import check_version
from strata.events.entities import AgentCreated, AgentDeleted, AgentUpdated
from strata.events.outbox import unit_of_work
from strata.versioned import soft_delete_row
from strata_data import store

# retired is terminal; paused agents take no new tasks until resumed
STATUS_MOVES = {
    "active": {"active", "paused", "retired"},
    "paused": {"paused", "active", "retired"},
    "retired": {"retired"},
}
UPDATABLE = ("description", "capabilities", "metadata", "system_prompt", "model", "tools", "max_steps", "status")


def mint_did(agent_id: UUID) -> str:
    """A decentralised identifier for an agent, stable for its lifetime."""
    return f"did:strata:agent:{agent_id}"


def _cache_key(tenant_id: UUID, agent_id: UUID) -> str:
    return f"strata:{tenant_id}:agent:v2:{agent_id}"  # v2: with the agent's definition (entries of v1 lack it)


async def create_agent(tenant_id: UUID, fields: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    from asyncpg import UniqueViolationError

    agent_id = uuid4()
    agent = {
        "agent_id": agent_id,
        "did": mint_did(agent_id),
        "description": "",
        "capabilities": [],
        "metadata": {},
        "system_prompt": "",
        "model": {},
        "tools": None,
        "max_steps": 20,
        **fields,
    }
    try:
        async with unit_of_work(tenant_id) as uow:
            created = await store.insert_agent(uow.conn, tenant_id, agent)
            await uow.emit(
                AgentCreated(
                    tenant_id=tenant_id,
                    correlation_id=correlation_id,
                    agent_id=agent_id,
                    name=created["name"],
                    did=created["did"],
                )
            )
    except UniqueViolationError as exc:
        raise ConflictError(f"an agent named {fields['name']!r} already exists") from exc
    return created


async def get_agent(tenant_id: UUID, agent_id: UUID) -> dict[str, Any]:
    async def load() -> dict[str, Any] | None:
        async with db.transaction(tenant_id) as conn:
            return await store.get_agent(conn, agent_id)

    agent: dict[str, Any] | None = await cache.read_through(_cache_key(tenant_id, agent_id), load)
    if agent is None:
        raise NotFoundError(f"no agent {agent_id}")
    return agent


async def update_agent(
    tenant_id: UUID, agent_id: UUID, changes: dict[str, Any], expected_version: int | None, correlation_id: str
) -> dict[str, Any]:
    async with unit_of_work(tenant_id) as uow:
        current = await store.get_agent(uow.conn, agent_id, for_update=True)
        if current is None:
            raise NotFoundError(f"no agent {agent_id}")
        check_version(expected_version, current["version"])
        if "status" in changes and changes["status"] not in STATUS_MOVES[current["status"]]:
            raise ConflictError(f"an agent cannot go from {current['status']} to {changes['status']}")
        changed = {k: v for k, v in changes.items() if k in UPDATABLE and v != current[k]}
        if not changed:
            return current
        updated = await store.update_agent(uow.conn, agent_id, changed)
        await uow.emit(
            AgentUpdated(
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                agent_id=agent_id,
                version=updated["version"],
                changed=sorted(changed),
                status=updated["status"],
            )
        )
    await cache.invalidate(_cache_key(tenant_id, agent_id))
    return updated


async def delete_agent(tenant_id: UUID, agent_id: UUID, expected_version: int | None, correlation_id: str) -> None:
    """Soft delete: the row stays (runs and audit refer to it); reads and lists no longer show it."""
    async with unit_of_work(tenant_id) as uow:
        current = await store.get_agent(uow.conn, agent_id, for_update=True)
        if current is None:
            raise NotFoundError(f"no agent {agent_id}")
        check_version(expected_version, current["version"])
        await soft_delete_row(uow.conn, "agents", "agent_id", agent_id)
        await uow.emit(AgentDeleted(tenant_id=tenant_id, correlation_id=correlation_id, agent_id=agent_id))
    await cache.invalidate(_cache_key(tenant_id, agent_id))
