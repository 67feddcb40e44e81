"""HTTP routes of L11, one module per resource."""
