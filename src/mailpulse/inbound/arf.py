"""Feedback reports (RFC 5965, the Abuse Reporting Format): a recipient pressed "spam".

A report is ``multipart/report; report-type=feedback-report`` with a human-readable part, a
``message/feedback-report`` part (``Feedback-Type: abuse``, ``Original-Mail-From``,
``Original-Rcpt-To``, …) and the original message or its headers (``message/rfc822`` or
``text/rfc822-headers``). Read with the standard library's ``email`` package.

What a report is about is decided by a signed token, never by the addresses it quotes: the
VERP address it was mailed to, else the VERP return path it quotes (``Original-Mail-From``,
or the enclosed original's ``Return-Path``), whose token must verify (inbound/addresses.py).
The quoted Message-ID and Original-Rcpt-To are not used to find a delivery: they are not
signed, and one Message-ID is shared by all the recipients of a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Final

#: Feedback-Type values that are a spam complaint (RFC 5965 §7.3: abuse; fraud is spam too)
COMPLAINT_TYPES: Final = frozenset({"abuse", "fraud"})


@dataclass(frozen=True, slots=True)
class Feedback:
    feedback_type: str  # lower-cased: abuse, fraud, virus, other, not-spam, …
    #: VERP return paths the report quotes, in the order they are worth trying
    return_paths: tuple[str, ...]
    original_rcpt_to: str  # as quoted; for the log only, never trusted

    @property
    def complaint(self) -> bool:
        return self.feedback_type in COMPLAINT_TYPES


def _fields(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        return BytesHeaderParser().parsebytes(raw)
    return None


def _original_headers(report: Message) -> Message | None:
    for part in report.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind in ("text/rfc822-headers", "text/global-headers"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return BytesHeaderParser().parsebytes(raw)
    return None


def read_feedback(message: Message) -> Feedback | None:
    """The feedback report in ``message``; None when it is not one."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != "feedback-report":
        return None
    fields: Message | None = None
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            fields = _fields(part)
            break
    if fields is None:
        return None
    paths: list[str] = []
    paths.extend(str(v) for v in fields.get_all("Original-Mail-From") or [])
    original = _original_headers(message)
    if original is not None:
        paths.extend(str(v) for v in original.get_all("Return-Path") or [])
    return Feedback(
        feedback_type=str(fields.get("Feedback-Type", "")).strip().lower(),
        return_paths=tuple(p.strip() for p in paths if p.strip()),
        original_rcpt_to=str(fields.get("Original-Rcpt-To", "")).strip(),
    )
