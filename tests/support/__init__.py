"""Shared test helpers (databases, servers, loopback DNS, SMTP sink)."""
