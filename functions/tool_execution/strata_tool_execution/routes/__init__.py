"""HTTP routes of L03 tool execution, one module per resource."""
