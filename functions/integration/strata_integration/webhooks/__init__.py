"""Outbound webhooks: subscriptions, signed deliveries retried with backoff, dead letters and redelivery."""
