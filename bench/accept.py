"""Accept throughput and latency of POST /smtp/emails against `mailpulse serve`.

    .venv/bin/python bench/accept.py --messages 5000 --concurrency 32
    .venv/bin/python bench/accept.py --auth both --rounds 2    # token and static key, alternating
    .venv/bin/python bench/accept.py --auth both --client raw  # the light load generator

Prints accepted/s, p50 and p99 latency, the server's CPU per request (all its processes and
threads; less disturbed than accepted/s when other work shares the machine), and its peak RSS.
``--auth`` chooses how the requests authenticate: ``token`` (an access token from
/oauth/access_token, the default), ``key`` (a static API key, ``mailpulse key create``), or
``both``: ``--rounds`` rounds of each, alternating on one server, so the two are compared
under the same conditions. ``--client``
chooses the load generator: ``httpx`` (the default; heavy on CPU, so on 2 cores it understates
the server) or ``raw``, the pre-encoded asyncio-streams client of ``delivery.py`` (about
0.1 ms of client CPU per request). Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _server import cli, serve  # type: ignore[import-not-found]
from delivery import (  # type: ignore[import-not-found]
    http_load,
    http_requests,
    idle_load,
    process_tree,
    tree_cpu,
)


def payload(sender: str, n: int, size: int) -> dict[str, object]:
    html = ("<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing. " * 60)[
        : size - 4
    ] + "</p>"
    return {
        "email": {
            "subject": f"Bench message {n}",
            "html": base64.b64encode(html.encode()).decode(),
            "from": {"name": "Bench", "email": sender},
            "to": [{"name": "Rcpt", "email": f"rcpt{n}@bench.example"}],
        }
    }


async def run(
    url: str, token: str, sender: str, messages: int, concurrency: int, size: int
) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(messages))
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

        async def client() -> None:
            for n in counter:
                started = time.perf_counter()
                answer = await http.post("/smtp/emails", json=payload(sender, n, size))
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(answer.text)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


def report(label: str, messages: int, elapsed: float, latencies: list[float], cpu: float) -> None:
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{label:<6} accepted/s {messages / elapsed:7,.0f}   "
        f"p50 {q[49] * 1000:6.1f} ms   p99 {q[98] * 1000:6.1f} ms   "
        f"server CPU {cpu * 1000 / messages:.2f} ms/request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--size", type=int, default=2048, help="HTML bytes per message")
    parser.add_argument("--synchronous", default="FULL", help="SQLite PRAGMA synchronous")
    parser.add_argument(
        "--auth", choices=["token", "key", "both"], default="token", help="how requests log in"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each --auth way")
    parser.add_argument(
        "--client", choices=["httpx", "raw"], default="httpx", help="the load generator"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(Path(tmp), sqlite_synchronous=args.synchronous) as server,
    ):
        credentials: dict[str, str] = {}
        if args.auth in ("token", "both"):
            credentials["token"] = server.token()
        if args.auth in ("key", "both"):
            created = json.loads(cli(server.env, "key", "create", "bench", "--json"))
            credentials["key"] = str(created["key"])
        print(f"messages      {args.messages} ({args.size} B html), concurrency {args.concurrency}")
        print(f"machine busy  {idle_load():.0%} before the runs (other sessions share it)")
        results: dict[str, list[float]] = {label: [] for label in credentials}
        for _ in range(args.rounds):
            for label, credential in credentials.items():
                pids = process_tree(server.process.pid)
                cpu_before = tree_cpu(pids)[0]
                if args.client == "raw":
                    port = int(server.url.rsplit(":", 1)[1])
                    requests = http_requests(
                        port, credential, server.sender, args.messages, args.size
                    )
                    _done, latencies, started, ended = asyncio.run(
                        http_load(port, requests, args.concurrency, 900)
                    )
                    elapsed = ended - started
                else:
                    started = time.perf_counter()
                    latencies = asyncio.run(
                        run(
                            server.url,
                            credential,
                            server.sender,
                            args.messages,
                            args.concurrency,
                            args.size,
                        )
                    )
                    elapsed = time.perf_counter() - started
                cpu = tree_cpu(pids)[0] - cpu_before
                results[label].append(args.messages / elapsed)
                report(label, args.messages, elapsed, latencies, cpu)
        if args.rounds > 1 or len(credentials) > 1:
            for label, rates in results.items():
                print(f"{label:<6} mean accepted/s {statistics.mean(rates):7,.0f}")
        print(f"server RSS    {server.rss_kb() / 1024:.0f} MB (peak)")


if __name__ == "__main__":
    main()
