"""`python -m strata_cli` runs the CLI."""

from strata_cli.main import app

app()
