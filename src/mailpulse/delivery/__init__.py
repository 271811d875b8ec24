"""Delivery: queue claims, MX resolution, pooled SMTP sessions, reply classification.

Start a worker with ``DeliveryWorker(db, settings).run(stop_event)``; call ``wake()`` after
accepting mail so delivery starts at once.
"""

from mailpulse.delivery.classify import Classification, classify, parse_enhanced_status
from mailpulse.delivery.worker import DeliveryWorker

__all__ = ["Classification", "DeliveryWorker", "classify", "parse_enhanced_status"]
