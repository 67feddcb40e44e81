"""L04 model gateway: one API over every model provider."""
