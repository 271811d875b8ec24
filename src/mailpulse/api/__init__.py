"""HTTP surface: the SendPulse-compatible REST API."""
