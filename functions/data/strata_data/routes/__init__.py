"""HTTP routes of L01, one module per resource."""
