"""L10's logic: the console's data views, each put together from the layers that own the data (over their public
API, as the caller's tenant), one section per source so that a layer that is down or a scope the caller lacks
costs that section only, never the page."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from strata import peers
from strata.auth import Principal
from strata.errors import DependencyUnavailableError

Fetch = Callable[[], Awaitable[Any]]


class Reader:
    """Reads peers' resources for one console request: as the caller's tenant, only what the caller's own scopes
    allow (the console shows nothing its user could not read through the API)."""

    def __init__(self, principal: Principal, correlation_id: str) -> None:
        self.principal = principal
        self.correlation_id = correlation_id

    async def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await peers.get_json(
            path, tenant_id=self.principal.tenant_id, correlation_id=self.correlation_id, params=params
        )

    async def section(self, scopes: tuple[str, ...], fetch: Fetch) -> dict[str, Any]:
        """One part of a view: `{"ok": true, "data": ...}`, or `{"ok": false, "error": ...}` saying why not (a
        scope the caller lacks, a layer that did not answer)."""
        missing = [s for s in scopes if not self.principal.has(s)]
        if missing:
            return {"ok": False, "error": f"needs the scope {', '.join(missing)}", "reason": "forbidden"}
        try:
            return {"ok": True, "data": await fetch()}
        except peers.PeerStatusError as exc:
            return {"ok": False, "error": str(exc), "reason": "unavailable"}
        except DependencyUnavailableError as exc:
            return {"ok": False, "error": exc.detail, "reason": "unavailable"}


def _principal(principal: Principal) -> dict[str, Any]:
    return {
        "tenant_id": str(principal.tenant_id),
        "principal_id": principal.principal_id,
        "kind": principal.kind,
        "scopes": sorted(principal.scopes),
    }


async def _first_page(reader: Reader, path: str, params: dict[str, Any], shown: int) -> dict[str, Any]:
    """The newest items of a list (up to 100 counted, `shown` of them returned) and whether there are more."""
    page = await reader.get(path, {**params, "limit": 100})
    items = page["items"]
    return {"count": len(items), "more": page["next_cursor"] is not None, "items": items[:shown]}


async def _tenant_budgets(reader: Reader) -> list[dict[str, Any]]:
    """The tenant-wide budgets (not those of one run or task) and what each spent in its window."""
    page = await reader.get("/v1/budgets", {"limit": 100})
    return [b for b in page["items"] if b["scope"] == "tenant"]


async def overview(principal: Principal, correlation_id: str) -> dict[str, Any]:
    """What an operator looks at first: runs by state, spend today against the tenant's budgets, open alerts,
    pending approvals and dead letters, and the health of every layer and its dependencies."""
    reader = Reader(principal, correlation_id)
    today = datetime.now(UTC).date()

    async def spend() -> dict[str, Any]:
        usage, budgets = await asyncio.gather(
            reader.get("/v1/models/usage", {"from": today, "to": today, "group_by": "model"}),
            _tenant_budgets(reader),
        )
        return {
            "today_micro_usd": usage["totals"]["cost_micro_usd"],
            "calls_today": usage["totals"]["calls"],
            "by_model": [{"model": g["key"], "cost_micro_usd": g["cost_micro_usd"]} for g in usage["groups"]],
            "budgets": budgets,
        }

    sections = await asyncio.gather(
        reader.section(("runs:read",), lambda: reader.get("/v1/run-summary")),
        reader.section(("models:read", "budgets:read"), spend),
        reader.section(("evaluations:read",), lambda: _first_page(reader, "/v1/alerts", {"status": "open"}, 5)),
        reader.section(("approvals:read",), lambda: _first_page(reader, "/v1/approvals", {"status": "pending"}, 5)),
        reader.section(
            ("dead-letters:read",), lambda: _first_page(reader, "/v1/dead-letters", {"status": "pending"}, 5)
        ),
        reader.section(("status:read",), lambda: reader.get("/v1/status")),
    )
    names = ("runs", "spend", "alerts", "approvals", "dead_letters", "status")
    return {"principal": _principal(principal), **dict(zip(names, sections, strict=True))}


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


async def costs(principal: Principal, correlation_id: str, days: int) -> dict[str, Any]:
    """Spend and quality over the last `days` UTC days, ready to draw: spend per day per model (L04's metering),
    spend and mean score per day per agent (L06's samples), agents named (L01), and the tenant's budgets."""
    reader = Reader(principal, correlation_id)
    last = datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    axis = _days(first, last)

    async def by_model() -> dict[str, Any]:
        usage = await reader.get(
            "/v1/models/usage", {"from": first, "to": last, "group_by": "day", "split_by": "model"}
        )
        series: dict[str, list[int]] = {}
        for group in usage["groups"]:
            values = series.setdefault(group["split"], [0] * len(axis))
            if group["key"] in axis:
                values[axis.index(group["key"])] += group["cost_micro_usd"]
        return {"series": series, "total_micro_usd": usage["totals"]["cost_micro_usd"]}

    async def per_agent(metric: str, field: str) -> dict[str, Any]:
        found = await reader.get(
            "/v1/quality/series",
            {
                "metric": metric,
                "bucket": "day",
                "subject_kind": "agent",
                "from": f"{first.isoformat()}T00:00:00Z",
                "to": f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z",
            },
        )
        series: dict[str, list[float | None]] = {}
        for subject in found["series"]:
            values: list[float | None] = [None] * len(axis)
            for point in subject["points"]:
                day = str(point["at"])[:10]
                if day in axis:
                    values[axis.index(day)] = point[field]
            series[subject["subject"].removeprefix("agent:")] = values
        return {"series": series}

    async def agent_names() -> dict[str, str]:
        page = await reader.get("/v1/agents", {"limit": 100})
        return {a["agent_id"]: a["name"] for a in page["items"]}

    model_spend, agent_spend, agent_score, names, tenant_budgets = await asyncio.gather(
        reader.section(("models:read",), by_model),
        reader.section(("evaluations:read",), lambda: per_agent("task.cost_micro_usd", "sum")),
        reader.section(("evaluations:read",), lambda: per_agent("task.score", "avg")),
        reader.section(("agents:read",), agent_names),
        reader.section(("budgets:read",), lambda: _tenant_budgets(reader)),
    )
    return {
        "days": axis,
        "spend_by_model": model_spend,
        "spend_by_agent": agent_spend,
        "score_by_agent": agent_score,
        "agents": names["data"] if names["ok"] else {},
        "budgets": tenant_budgets,
    }
