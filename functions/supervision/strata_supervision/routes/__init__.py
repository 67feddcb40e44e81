"""HTTP routes of L08 supervision, one module per resource."""
