"""CPU per plain send through the submit pipeline alone (``Submitter.submit``: parse, sender
check, render, compose) with an in-memory store: no HTTP, no database.

    .venv/bin/python bench/submit.py
    PYTHONPATH=/path/to/older/src .venv/bin/python bench/submit.py   # the same against other code

Prints the best of 5 rounds of 5,000 sends (process CPU time per send). Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from mailpulse.core.clock import SystemClock
from mailpulse.core.ids import new_email_id
from mailpulse.core.submit import Submitter
from mailpulse.core.validate import Limits

HTML = ("<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing. " * 60)[:2044] + "</p>"


class MemoryStore:
    """Every sender allowed, no templates, nothing kept (old and new SubmitStore alike)."""

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        return True, True

    async def template_exists(self, account_id: int, template_id: str) -> bool:
        return False

    async def template(self, account_id: int, template_id: str) -> None:
        return None

    async def save(self, message: Any) -> None:
        return None


def email(n: int) -> dict[str, Any]:
    return {
        "subject": f"Bench message {n}",
        "html": base64.b64encode(HTML.encode()).decode(),
        "from": {"name": "Bench", "email": "bench@bench.example"},
        "to": [{"name": "Rcpt", "email": f"rcpt{n}@bench.example"}],
    }


async def main(count: int = 5000, rounds: int = 5) -> None:
    submitter = Submitter(
        store=MemoryStore(),  # type: ignore[arg-type]
        clock=SystemClock(),
        new_id=new_email_id,
        limits=Limits(),
    )
    emails = [email(n) for n in range(count)]
    for one in emails[:500]:  # warm up
        await submitter.submit(1, one, "127.0.0.1")
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for one in emails:
            await submitter.submit(1, one, "127.0.0.1")
        best = min(best, (time.process_time() - started) / count)
    print(f"{best * 1e6:.1f} µs CPU per plain send (best of {rounds} × {count})")


if __name__ == "__main__":
    asyncio.run(main())
