"""Sagas: operations across layers, each step with a timeout and retries, compensated in reverse order on failure
and resumed after a crash (engine), persisted with every transition (store), and the tenant sagas (tenants)."""
