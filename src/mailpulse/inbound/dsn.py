"""Delivery status notifications: what a report mailed back says about a delivery.

RFC 3464 reports (``multipart/report; report-type=delivery-status``, and RFC 6533's
``message/global-delivery-status``) are read with the standard library's ``email`` package:
each per-recipient block gives ``Final-Recipient``, ``Action`` (failed, delayed, delivered,
relayed, expanded), ``Status`` (RFC 3463, e.g. 5.1.1) and ``Diagnostic-Code`` (``smtp; 550
5.1.1 <…>: User unknown``, from which the reply code and text come).

Reports in no standard shape (qmail, old Exchange, Yahoo, …) go to flufl.bounce's detectors,
which tell permanent from temporary failures, and to a search of the text for an SMTP reply
(``550 5.1.1 …``) for the codes. A message that is neither — an out-of-office reply, a
person answering the return path — is no report (:func:`read_status` answers None).

Pure functions over ``email.message.Message``; nothing here knows which delivery it is about
(the VERP address decides that, inbound/addresses.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from typing import Final

from flufl.bounce import all_failures

log = logging.getLogger(__name__)

FAILED: Final = "failed"
DELAYED: Final = "delayed"
DELIVERED: Final = "delivered"

_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"(?<![\d.])([45]\d\d)[ -](?:([45]\.\d{1,3}\.\d{1,3})\s+)?(\S.*)")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
_FOLD = re.compile(r"\r?\n[ \t]+")
#: how much of a message's text the heuristics look at
_TEXT_LIMIT: Final = 64 * 1024
_AUTO_REPLY = re.compile(
    r"auto(matic)?[ -]?repl|out of (the )?office|abwesen|vacation|autorespond", re.IGNORECASE
)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed)|failure notice"
    r"|returned mail|mail delivery (failed|system)|could not be delivered|non[- ]?delivery",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """What a report says about its (one) recipient."""

    action: str  # failed / delayed / delivered (relayed and expanded count as delivered)
    status: str  # RFC 3463 enhanced status, "" when the report has none
    code: int | None  # the SMTP reply code of the diagnostic, if it has one
    text: str  # the diagnostic text, or a description of the report
    recipient: str  # Final-Recipient (or Original-Recipient) as the report gives it; not trusted
    standard: bool  # an RFC 3464 report (False: found by the heuristics)


def _unfold(value: str) -> str:
    return _FOLD.sub(" ", value).strip()


def _status_of(value: str) -> str:
    match = _STATUS.match(value)
    return ".".join(str(int(p)) for p in match.groups()) if match else ""


def _address(value: str) -> str:
    """``rfc822; user@example.com`` → ``user@example.com``."""
    _, _, address = value.partition(";")
    return (address or value).strip().strip("<>")


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery-status part: the per-message block, then one per
    recipient. The email package splits ``message/delivery-status`` itself; other spellings
    (global, text/) are split here."""
    payload = part.get_payload()
    if isinstance(payload, list) and part.get_content_type() == "message/delivery-status":
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, list):
        text = "\r\n\r\n".join(p.as_string() for p in payload if isinstance(p, Message))
    else:
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    parser = HeaderParser()
    return [parser.parsestr(block) for block in _BLANK_LINE.split(text) if block.strip()]


def _diagnostic(value: str) -> tuple[int | None, str, str]:
    """``smtp; 550 5.1.1 text`` → (550, "5.1.1", "550 5.1.1 text")."""
    kind, sep, text = _unfold(value).partition(";")
    text = text.strip() if sep else kind.strip()
    match = _REPLY.match(text)
    if match is None:
        return None, "", text
    return int(match.group(1)), match.group(2) or "", text


def _from_block(block: Message, reporter: str) -> DeliveryStatus | None:
    action = _unfold(str(block.get("Action", ""))).lower()
    if not action:
        return None
    action = DELIVERED if action in ("relayed", "expanded") else action
    status = _status_of(str(block.get("Status", "")))
    code, diag_status, text = _diagnostic(str(block.get("Diagnostic-Code", "")))
    status = status or diag_status
    if not text:
        text = f"{status or 'no status'} reported by {reporter or 'the receiving server'}"
    recipient = _address(
        _unfold(str(block.get("Final-Recipient") or block.get("Original-Recipient") or ""))
    )
    return DeliveryStatus(action, status, code, text, recipient, standard=True)


_RANK = {FAILED: 0, DELAYED: 1, DELIVERED: 2}


def standard_status(message: Message) -> DeliveryStatus | None:
    """The recipient status of an RFC 3464 report; with several recipients, the worst one."""
    for part in message.walk():
        if part.get_content_type() not in (
            "message/delivery-status",
            "message/global-delivery-status",
            "text/delivery-status",
        ):
            continue
        blocks = _blocks(part)
        if not blocks:
            continue
        reporter = _address(_unfold(str(blocks[0].get("Reporting-MTA", ""))))
        found = [s for s in (_from_block(b, reporter) for b in blocks) if s is not None]
        if found:
            return min(found, key=lambda s: _RANK.get(s.action, 3))
    return None


def _text_of(message: Message) -> str:
    """The readable text of a message (its text/* parts), bounded."""
    pieces: list[str] = []
    size = 0
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        raw = part.get_payload(decode=True)
        if not isinstance(raw, bytes):
            continue
        text = raw[: _TEXT_LIMIT - size].decode(part.get_content_charset() or "utf-8", "replace")
        pieces.append(text)
        size += len(text)
        if size >= _TEXT_LIMIT:
            break
    return "\n".join(pieces)


def _first_reply(text: str) -> tuple[int | None, str, str]:
    for line in text.splitlines():
        match = _REPLY.search(line)
        if match is not None:
            return int(match.group(1)), match.group(2) or "", line.strip()[:1000]
    return None, "", ""


def is_auto_reply(message: Message) -> bool:
    """An automatic answer (RFC 3834 ``Auto-Submitted: auto-replied``, out-of-office): it went
    to the return path, but it is no report."""
    if str(message.get("Auto-Submitted", "")).lower().startswith("auto-replied"):
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    return bool(_AUTO_REPLY.search(str(message.get("Subject", ""))))


def looks_like_bounce(message: Message, mail_from: str) -> bool:
    """A message from a mail system (null sender, MAILER-DAEMON, postmaster) or with a bounce's
    subject: at a VERP address, a report whatever its body says."""
    if is_auto_reply(message):
        return False
    sender = f"{mail_from} {message.get('From', '')}"
    null_sender = mail_from.strip("<> ") == ""
    return (
        null_sender
        or bool(_BOUNCE_SENDER.search(sender))
        or bool(_BOUNCE_SUBJECT.search(str(message.get("Subject", ""))))
    )


def heuristic_status(message: Message, mail_from: str) -> DeliveryStatus | None:
    """A non-standard report: flufl.bounce says whether a recipient failed for good or for
    now; the first SMTP reply in the text gives the codes. None when it is no report."""
    if not looks_like_bounce(message, mail_from):
        return None
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping over a strange message: fall back to the text
        log.debug("flufl.bounce could not read a report", exc_info=True)
        temporary, permanent = frozenset(), frozenset()
    text = _text_of(message)
    code, status, line = _first_reply(text)
    status = status or _status_of(line)
    if temporary and not permanent:
        action = DELAYED
    elif permanent or code is None or code >= 500:
        # a mail system's report at our VERP address, no sign of a temporary problem
        action = FAILED
    else:
        action = DELAYED
    address = sorted(permanent or temporary)
    recipient = address[0].decode("utf-8", "replace") if address else ""
    if not line:
        subject = _unfold(str(message.get("Subject", "")))[:200]
        line = f"a report without a readable status ({subject or 'no subject'})"
    return DeliveryStatus(action, status, code, line, recipient, standard=False)


def read_status(message: Message, mail_from: str) -> DeliveryStatus | None:
    """What a message at a VERP address says about its delivery; None when it is no report."""
    return standard_status(message) or heuristic_status(message, mail_from)
