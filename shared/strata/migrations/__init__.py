"""Versioned, forward-only SQL migrations: recorded in `schema_migrations`, safe to run twice, never destructive."""

from strata.migrations.runner import Migration, MigrationError, apply_migrations, discover

__all__ = ["Migration", "MigrationError", "apply_migrations", "discover"]
