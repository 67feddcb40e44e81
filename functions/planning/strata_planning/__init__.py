"""L05 planning: goals into validated, signed task graphs."""
