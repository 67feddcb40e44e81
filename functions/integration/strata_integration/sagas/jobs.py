"""The schedule's entry point: resume every saga whose runner is gone (it died or ran out of time)."""

from __future__ import annotations

from typing import Any

from strata_integration.sagas import tenants  # noqa: F401 - registers the tenant sagas' definitions
from strata_integration.sagas.engine import resume_due


async def resume_sagas() -> dict[str, Any]:
    return await resume_due()
