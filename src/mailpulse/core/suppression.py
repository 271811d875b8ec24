"""Why an address is on an account's suppression list, in the words the log and the API use.

Pure data: the store reads the flags of a row (store/suppression.py), the submit pipeline
turns them into the answer a suppressed delivery records (``smtp_answer_data``), and the
unsubscribe endpoints into their 0/1 fields. The reasons, in the order they are named:

    spam complaint              an ARF report (RFC 5965) from the recipient's provider
    unsubscribed by link        the List-Unsubscribe link or mailto, or the one-click page
    unsubscribed by the sender  POST /smtp/unsubscribe (SendPulse's ``unsubscribe_by_user``)
    hard bounce (<category>)    a recipient-level permanent failure (delivery/classify.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: the prefix of every suppressed delivery's answer (``smtp_answer_data``)
ANSWER_PREFIX: Final = "suppressed: "


@dataclass(frozen=True, slots=True)
class Listed:
    """One address on an account's suppression list and the flags that put it there."""

    email: str
    unsubscribe_by_link: bool = False
    unsubscribe_by_user: bool = False
    spam_complaint: bool = False
    bounced: bool = False
    bounce_category: str | None = None

    @property
    def unsubscribed(self) -> bool:
        """On SendPulse's unsubscribe list (a bounce alone is on the bounce list instead)."""
        return self.unsubscribe_by_link or self.unsubscribe_by_user or self.spam_complaint

    def reasons(self) -> list[str]:
        out: list[str] = []
        if self.spam_complaint:
            out.append("spam complaint")
        if self.unsubscribe_by_link:
            out.append("unsubscribed by link")
        if self.unsubscribe_by_user:
            out.append("unsubscribed by the sender")
        if self.bounced:
            out.append(f"hard bounce ({self.bounce_category or 'other'})")
        return out or ["on the suppression list"]

    def reason(self) -> str:
        """e.g. ``unsubscribed by link`` or ``spam complaint, hard bounce (bad_mailbox)``."""
        return ", ".join(self.reasons())

    def answer(self) -> str:
        """The recorded answer of a delivery held for this address."""
        return ANSWER_PREFIX + self.reason()
