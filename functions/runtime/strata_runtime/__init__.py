"""L02 runtime: durable, event-driven execution of plans."""
