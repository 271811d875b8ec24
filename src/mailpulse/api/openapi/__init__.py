"""The OpenAPI 3.1 document of the SendPulse-compatible surface, and the pages that serve it.

One module per resource holds that resource's fragment (``oauth``, ``emails``, ``email_log``,
``bounces``, ``unsubscribe``, ``resubscribe``, ``health``);
``components`` holds what they share (error shapes, the bearer scheme, 401/413/503);
``document`` assembles them; ``serve`` answers ``/openapi.json`` and ``/docs``.
"""

from mailpulse.api.openapi.document import build
from mailpulse.api.openapi.serve import ROUTES

__all__ = ["ROUTES", "build"]
