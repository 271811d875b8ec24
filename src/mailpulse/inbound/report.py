"""What one message at the bounce receiver means, for each address it was sent to.

Pure: the message, the envelope sender and the addresses (already checked, with their tokens,
by inbound/addresses.py) in; a list of :data:`Action` out, which inbound/apply.py writes.

    unsubscribe+<token>   any message: unsubscribe the address the token names (by link)
    bounce+<token>        a feedback report (ARF) of type abuse/fraud: a spam complaint;
                          a DSN or a mail system's report: failed → bounce, delayed → nothing
                          is written (the delivery already counts as delivered; a later
                          failure report bounces it), delivered → nothing;
                          anything else (an out-of-office, a person replying): dropped
    fbl                   a feedback report, its delivery named by the VERP return path it
                          quotes; anything else dropped
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from mailpulse.delivery.classify import Classification, classify, expired_classification
from mailpulse.inbound import arf, dsn
from mailpulse.inbound.addresses import (
    Addresses,
    BounceAddress,
    FeedbackAddress,
    Target,
    UnsubscribeAddress,
)

#: the reply code stored for a failure whose report gives none
DEFAULT_FAILURE_CODE = 550


@dataclass(frozen=True, slots=True)
class Bounce:
    public_id: str
    status: dsn.DeliveryStatus
    code: int
    classification: Classification


@dataclass(frozen=True, slots=True)
class Complaint:
    public_id: str
    feedback_type: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    public_id: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing is written; ``why`` is the log line."""

    why: str


Action = Bounce | Complaint | Unsubscribe | Ignore


def classify_failure(status: dsn.DeliveryStatus) -> tuple[int, Classification]:
    """The reply code to record and the category of a failure report. A failure with a 4.x.x
    status is a remote server giving up after retrying: expired, not the address's fault."""
    code = status.code if status.code is not None else DEFAULT_FAILURE_CODE
    if status.status.startswith("4.") or (status.code is not None and status.code < 500):
        return code, expired_classification()
    return code, classify(code, status.status, status.text)


def _bounce_report(message: Message, mail_from: str, public_id: str) -> Action:
    feedback = arf.read_feedback(message)
    if feedback is not None:
        return _complaint(feedback, public_id)
    status = dsn.read_status(message, mail_from)
    if status is None:
        return Ignore(f"delivery {public_id}: a message that is no report (auto-reply?), dropped")
    if status.action == dsn.FAILED:
        code, classification = classify_failure(status)
        return Bounce(public_id, status, code, classification)
    if status.action == dsn.DELAYED:
        return Ignore(
            f"delivery {public_id}: delay report ({status.status or 'no status'}), "
            "nothing changes until a failure report"
        )
    return Ignore(f"delivery {public_id}: {status.action} report, nothing changes")


def _complaint(feedback: arf.Feedback, public_id: str) -> Action:
    if not feedback.complaint:
        kind = feedback.feedback_type or "no type"
        return Ignore(f"delivery {public_id}: feedback report ({kind}) is no complaint, dropped")
    return Complaint(public_id, feedback.feedback_type)


def _feedback_loop(message: Message, addresses: Addresses) -> Action:
    feedback = arf.read_feedback(message)
    if feedback is None:
        return Ignore("feedback address: not a feedback report, dropped")
    for path in feedback.return_paths:
        public_id = addresses.return_path_delivery(path)
        if public_id is not None:
            return _complaint(feedback, public_id)
    return Ignore("feedback report quoting no return path of ours that verifies, dropped")


def read(
    message: Message, mail_from: str, targets: list[Target], addresses: Addresses
) -> list[Action]:
    """One action per address the message was sent to."""
    actions: list[Action] = []
    for target in targets:
        if isinstance(target, UnsubscribeAddress):
            actions.append(Unsubscribe(target.public_id))
        elif isinstance(target, BounceAddress):
            actions.append(_bounce_report(message, mail_from, target.public_id))
        elif isinstance(target, FeedbackAddress):
            actions.append(_feedback_loop(message, addresses))
    return actions
