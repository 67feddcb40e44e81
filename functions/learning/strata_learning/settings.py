"""How learning gates what it learns from, where it writes training data, and how it submits customisation jobs."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from strata.config import Settings


class LearningSettings(Settings):
    learning_min_score: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="A run's score at least this (and passed, no policy violation) yields examples",
    )
    learning_template_propose_score: float = Field(
        default=0.8, ge=0, le=1, description="A run at least this good proposes a learned plan template for review"
    )
    learning_template_active_score: float = Field(
        default=0.95, ge=0, le=1, description="A run at least this good makes its learned template active at once"
    )
    training_bucket: str = Field(default="", description="The S3 bucket fine-tuning exports are written to")
    bedrock_customization_role_arn: str = Field(
        default="",
        description="The IAM role Bedrock customisation jobs read and write S3 with (if a request names none)",
    )


@lru_cache
def learning_settings() -> LearningSettings:
    return LearningSettings()
