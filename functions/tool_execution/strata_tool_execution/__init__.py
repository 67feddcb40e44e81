"""L03 tool execution: the tool registry and exactly-once tool calls."""
