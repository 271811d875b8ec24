"""Loaded (via PYTHONPATH) by the processes of tests/outage/test_watchdog.py: with
MAILPULSE_TEST_BREAK_WORKER set, the delivery worker's claim loop meets a bug (not a store
error) on its third claim, as a real bug would end it."""

import os

if os.environ.get("MAILPULSE_TEST_BREAK_WORKER"):
    from mailpulse.delivery import worker as _worker

    _original = _worker.DeliveryWorker._claim
    _calls = {"n": 0}

    async def _broken_claim(self):  # type: ignore[no-untyped-def]
        _calls["n"] += 1
        if _calls["n"] >= 3:
            raise RuntimeError("a bug in the claim loop")
        return await _original(self)

    _worker.DeliveryWorker._claim = _broken_claim  # type: ignore[method-assign]
