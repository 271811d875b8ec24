"""Each recipient's own copy: what delivery adds to a stored message for one recipient.

The store keeps one copy of an accepted message for all its recipients. Some things must be
different per recipient — the VERP return path that ties a bounce report to its delivery
(``bounce+<signed token>@<bounce domain>``), the signed ``List-Unsubscribe`` link, later
tracking links and the DKIM signature over them — so they are added at delivery time, one
transaction per recipient, just before the message is sent (never held in memory for the
queue). Each capability contributes one *step*: a pure function of the stored message and
the delivery, returning the message to send (envelope sender and bytes).

With no steps, transactions carry up to 100 recipients of one message, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mailpulse.config import Settings
from mailpulse.core.signing import Signer
from mailpulse.delivery import verp
from mailpulse.delivery.queue import ClaimedDelivery, StoredMessage
from mailpulse.delivery.session import Transaction
from mailpulse.delivery.unsubscribe_headers import ListUnsubscribe

Step = Callable[[StoredMessage, ClaimedDelivery], StoredMessage]


class Personaliser:
    """Applies the steps, in order, to a one-recipient transaction."""

    def __init__(self, steps: Sequence[Step] = ()) -> None:
        self.steps = tuple(steps)

    @property
    def per_recipient(self) -> bool:
        """True when copies differ per recipient: transactions then carry one recipient."""
        return bool(self.steps)

    def transaction(self, tx: Transaction) -> Transaction:
        """The transaction to send: ``tx`` itself, or its recipient's own copy."""
        if not self.steps:
            return tx
        if len(tx.deliveries) != 1:
            raise ValueError("a personalised transaction carries exactly one recipient")
        delivery = tx.deliveries[0]
        message = tx.message
        for step in self.steps:
            message = step(message, delivery)
        return Transaction(message, tx.deliveries)


def for_settings(settings: Settings, signer: Signer | None = None) -> Personaliser:
    """The steps this configuration asks for (each capability adds its own here). ``signer``
    defaults to one with the settings' signing key."""
    signer = signer or Signer(settings.resolved_secret_key())
    steps: list[Step] = []
    steps.append(verp.verp_step(signer, settings.resolved_bounce_domain()))
    if settings.list_unsubscribe:
        steps.append(ListUnsubscribe.for_settings(settings, signer))
    return Personaliser(steps)
