"""HTTP routes of L09, one module per resource."""
