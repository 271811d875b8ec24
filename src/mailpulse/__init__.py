"""mailpulse: a self-hosted transactional email service speaking the SendPulse SMTP API."""

__version__ = "0.1.0"
