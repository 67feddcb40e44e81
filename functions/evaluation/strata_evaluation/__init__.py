"""L06 evaluation: scores every task and run."""
