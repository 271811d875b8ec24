"""Errors as values with a code: one exception family carrying the SendPulse error shape.

``api/errors.py`` renders an :class:`ApiError` as ``{"error_code": ..., "message": ...}`` with
its HTTP status. Every refusal the service makes is one of these; a 500 is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    status: int
    error_code: int
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {**self.extra, "error_code": self.error_code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.status}/{self.error_code}: {self.message}"


@dataclass(frozen=True)
class ErrorKind:
    """One entry of the catalogue. Call it for a fresh exception to raise: re-raising one shared
    instance would make its traceback grow with every raise."""

    status: int
    error_code: int
    message: str

    def __call__(self) -> ApiError:
        return ApiError(self.status, self.error_code, self.message)


def unprocessable(code: int, message: str) -> ErrorKind:
    return ErrorKind(422, code, message)


# The catalogue of the send endpoint (compat §c).
EMAIL_MISSING = unprocessable(422, "Argument email missing")
BADLY_FORMED = unprocessable(999, "Badly formed incoming data")
NUL_IN_TEXT = unprocessable(999, "Badly formed incoming data: NUL character in a text field")
FROM_EMAIL_MISSING = unprocessable(10, "Argument from.email missing")
FROM_EMAIL_INVALID = unprocessable(10, "Argument from.email is invalid")
FROM_INVALID = unprocessable(422, "Argument from is invalid")
TEMPLATE_ID_MISSING = unprocessable(10, "Argument template.id missing")
TEMPLATE_INVALID = unprocessable(422, "Argument template is invalid")
TEMPLATE_NOT_FOUND = unprocessable(31, "Template not found")
TEMPLATE_EMPTY = unprocessable(32, "Template body is empty")
TO_INVALID = unprocessable(11, "Argument email.to is invalid")
RECIPIENT_INVALID = unprocessable(422, "Recipient email is invalid")
SUBJECT_MISSING = unprocessable(12, "Argument subject missing")
BODY_MISSING = unprocessable(13, "Missed email body")
ATTACHMENTS_BINARY_INVALID = unprocessable(422, "Argument attachments_binary is invalid")
ATTACHMENTS_INVALID = unprocessable(422, "Argument attachments is invalid")
TOO_MANY_RECIPIENTS = unprocessable(550, "5.5.3 Too many recipients")
MESSAGE_TOO_LARGE = unprocessable(422, "Message size limit exceeded")
SENDER_NOT_VALID = unprocessable(422, "Sender is not valid")
NO_SMTP_USER = unprocessable(400, "No such SMTP user, you need to create SMTP account first")

# The email log.
NO_SUCH_EMAIL = ErrorKind(400, 14, "No such email")
NO_SUCH_EMAILS = ErrorKind(400, 14, "No such emails")
INFO_IDS_INVALID = ErrorKind(400, 832, "Emails param empty or incorrect")
BAD_DATE = ErrorKind(400, 799, "Wrong date format")

# Authentication on ordinary endpoints: 401, and never "invalid_client" (compat §b).
UNAUTHORIZED = ErrorKind(401, 401, "Unauthorized!")
NOT_FOUND = ErrorKind(404, 404, "Not found")
METHOD_NOT_ALLOWED = ErrorKind(405, 405, "Method not allowed")

# Bounded work per request (api/deps.py, api/compat.py, api/server.py): refused before the work.
BODY_TOO_LARGE = ErrorKind(413, 413, "Request body too large for this endpoint")
TOO_MANY_FIELDS = ErrorKind(413, 413, "Too many fields in the request")
TOO_DEEP = unprocessable(999, "Badly formed incoming data: nested too deeply")
BODY_TIMEOUT = ErrorKind(408, 408, "Request body not received in time")

# The store is unreachable (locked, restarting, connection lost): try again later. Raised as
# StoreUnavailable by store/outages.py at the store's edge; rendered with Retry-After.
STORE_UNAVAILABLE = ErrorKind(503, 503, "Service temporarily unavailable, try again later")
RETRY_AFTER_SECONDS = 5


class StoreUnavailable(ApiError):
    """The store could not be used; ``reason`` (the driver's first line) is for the log only."""

    def __init__(self, reason: str = "") -> None:
        kind = STORE_UNAVAILABLE
        super().__init__(kind.status, kind.error_code, kind.message)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason or self.message
