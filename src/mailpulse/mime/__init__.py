"""Building messages: compose, templates, plain text, links, dkim (pure functions)."""
