"""Inbound webhooks: per-tenant endpoints that verify a sender's signature and turn its payload into a goal."""
