"""L11 integration: platform status, webhooks, scheduled goals and sagas."""
