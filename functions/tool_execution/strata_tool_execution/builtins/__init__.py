"""L03's built-in tools: one module each."""
