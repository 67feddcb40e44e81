"""HTTP routes of L04 model gateway, one module per resource."""
