"""CPU cost of the submit pipeline's suppression step, in one process, without HTTP.

    .venv/bin/python bench/submit_step.py --sends 2000 --rounds 5

Runs ``Submitter.submit`` (parse, check the sender, render, compose, suppress + store through
the group-committing writer) on a fresh SQLite file, ``--concurrency`` sends at a time, in
alternating rounds with the suppression lookup on (the real one: one indexed lookup on the
writer's connection) and off (the lookup answers "nobody is listed" without a query), and prints
the process CPU time per send (all threads) and sends/s of each round, then the means and
their ratio. CPU per send is far less disturbed than throughput when other work shares the
machine, and alternating rounds share whatever disturbance there is. ``--listed N`` puts N
other addresses on the account's list first. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mailpulse.config import Settings
from mailpulse.core.suppression import Listed
from mailpulse.runtime import build_runtime
from mailpulse.store import accounts, migrate, suppression
from mailpulse.store.suppression import Suppress

SENDER = "bench@example.com"


def email(n: int, size: int) -> dict[str, Any]:
    html = ("<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing. " * 60)[: size - 4]
    return {
        "subject": f"Bench message {n}",
        "html": base64.b64encode((html + "</p>").encode()).decode(),
        "from": {"name": "Bench", "email": SENDER},
        "to": [{"name": "Rcpt", "email": f"rcpt{n}@bench.example"}],
    }


def nobody_listed(_conn: Any, _account: int, _emails: Any) -> Mapping[str, Listed]:
    return {}


async def round_(submit: Any, account: int, sends: int, concurrency: int, size: int) -> float:
    bodies = [email(n, size) for n in range(sends)]
    queue = iter(bodies)

    async def client() -> None:
        for body in queue:
            await submit(account, body, "127.0.0.1")

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, alternating")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--listed", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            data_dir=Path(tmp) / "var",
            secret_key="bench-secret",
        )
        rt = build_runtime(settings)
        migrate.upgrade(rt.db.engine)
        now = rt.clock.now()
        account = rt.db.write_sync(
            lambda c: accounts.create_account(
                c, name="b", email="", client_id="b", secret_hash="x", activated=True, now=now
            )
        )
        rt.db.write_sync(
            lambda c: accounts.add_sender(
                c, account_id=account, email=SENDER, name="b", now=now, status="active"
            )
        )
        entries = [
            Suppress(f"listed{n}@bench.example", unsubscribe_by_user=True)
            for n in range(args.listed)
        ]
        rt.db.write_sync(lambda c: suppression.add(c, account, entries, now))
        real = suppression.listed_among
        results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}

        async def run() -> None:
            rt.db.start()
            await rt.submitter.submit(account, email(-1, args.size), "127.0.0.1")  # warm up
            for _ in range(args.rounds):
                for label in ("off", "on"):
                    suppression.listed_among = real if label == "on" else nobody_listed
                    cpu, wall = time.process_time(), time.perf_counter()
                    await round_(
                        rt.submitter.submit, account, args.sends, args.concurrency, args.size
                    )
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    results[label].append((cpu * 1000 / args.sends, args.sends / wall))
                    print(
                        f"suppress step {label:<3}  CPU {cpu * 1000 / args.sends:.3f} ms/send   "
                        f"{args.sends / wall:7,.0f} sends/s"
                    )
            await rt.db.close()

        asyncio.run(run())
        cpu = {k: statistics.mean(c for c, _ in v) for k, v in results.items()}
        rate = {k: statistics.mean(r for _, r in v) for k, v in results.items()}
        for label in ("off", "on"):
            print(f"mean  {label:<3}  CPU {cpu[label]:.3f} ms/send   {rate[label]:7,.0f} sends/s")
        print(
            f"on/off: CPU per send {cpu['on'] / cpu['off']:.3f}, "
            f"sends/s {rate['on'] / rate['off']:.3f}"
        )


if __name__ == "__main__":
    main()
