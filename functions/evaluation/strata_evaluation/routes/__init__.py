"""HTTP routes of L06 evaluation, one module per resource."""
