"""The submit pipeline and the domain rules: no HTTP, no SQL."""
