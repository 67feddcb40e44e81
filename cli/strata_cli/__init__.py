"""The `strata` CLI and the Docker-free local cloud (developer tooling; never deployed to Lambda)."""
