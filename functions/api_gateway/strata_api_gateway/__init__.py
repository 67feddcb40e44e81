"""L09 API gateway: the HTTP API's authorizer, tenants and API keys."""
