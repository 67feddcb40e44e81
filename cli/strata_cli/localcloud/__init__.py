"""The local cloud: runs template.yaml's functions, HTTP API, event rules and schedules on one machine."""
