"""Value types shared by several event contracts."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Money is an integer number of millionths of a US dollar: exact, and comparable in EventBridge patterns.
MicroUsd = Annotated[int, Field(ge=0, description="Amount in millionths of a US dollar (1 USD = 1_000_000)")]
TaskKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(max_length=2000)]
