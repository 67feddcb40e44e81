"""HTTP routes of L02 runtime, one module per resource."""
