"""HTTP routes of L05 planning, one module per resource."""
