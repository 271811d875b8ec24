"""Text the store can hold.

PostgreSQL refuses NUL in a text column (SQLite keeps it), so no stored value ever contains
one: a lookup by a value that does is answered "nothing" here instead of failing in the driver.
Writes never get that far: NUL in an email's text is refused as bad input (core/validate.py).
"""

from __future__ import annotations


def storable(value: str) -> bool:
    """Whether ``value`` could equal a stored text value on every engine."""
    return "\x00" not in value
