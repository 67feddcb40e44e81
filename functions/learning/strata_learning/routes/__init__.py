"""HTTP routes of L07 learning, one module per resource."""
