"""Fixtures for the bounce receiver: the delivery tests' databases (each engine), a delivered
message to report on, and a receiver listening on a real loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mailpulse.core.clock import FixedClock
from mailpulse.core.signing import Signer
from mailpulse.inbound.addresses import Addresses
from mailpulse.inbound.server import BounceReceiver
from mailpulse.store.db import Database
from tests.delivery.conftest import (  # noqa: F401  (fixtures)
    clock,
    database_url,
    ddb,
    pg_url,
    sqlite_template,
)
from tests.delivery.helpers import BOUNCE_DOMAIN, TEST_SECRET


@pytest.fixture
def signer() -> Signer:
    return Signer(TEST_SECRET)


@pytest.fixture
async def receiver(
    ddb: Database,  # noqa: F811
    signer: Signer,
    clock: FixedClock,  # noqa: F811
) -> AsyncIterator[BounceReceiver]:
    running = BounceReceiver(ddb, Addresses(signer, BOUNCE_DOMAIN), clock, "127.0.0.1", 0)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
        await ddb.close()
