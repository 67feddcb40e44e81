"""The CLI's commands, one module per resource; `strata_cli.main` assembles them into the `strata` app."""
