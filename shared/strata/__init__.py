"""Strata's shared Lambda layer: settings, clients, events, the app and handler factories."""

__version__ = "0.1.0"
