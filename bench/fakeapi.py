"""A fake marketing platform for bench/sync.py: it can't batch metrics and pages by week.

    .venv/bin/python bench/fakeapi.py --port 8765 [--latency-ms 50] [--max-in-flight 10]

API (every request needs ``Authorization: Bearer <token>``; the token identifies the source)::

    GET /v1/metrics/{metric}/daily?from=YYYY-MM-DD&to=YYYY-MM-DD&page=N
    -> 200 {"data": [{"date": "YYYY-MM-DD", "value": float}, ...], "next_page": N + 1 | null}

One metric per request (no batching) and at most 7 days per page (page 1 is the first week of
the window), so a window of D days costs ``ceil(D / 7)`` requests per metric and nothing can be
saved below that. Values depend only on (metric, date): any window, any page split gives the same
numbers (``daily_value``). Every request waits ``--latency-ms`` before answering. At most
``--max-in-flight`` requests per token may be in flight: one more is answered 429 at once and
counted as a violation. Out of band, for the benchmark itself::

    GET  /_stats  -> per token: requests, violations, peak in flight, first/last (monotonic s)
    POST /_reset  -> forget every counter

It is a raw asyncio HTTP/1.1 server (keep-alive, no pipelining, no request bodies), on uvloop
when installed, meant to run in its own process so it never competes with the engine under
test for a GIL. It imports nothing from krsync. On start it prints ``ready <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
import zlib
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PAGE_DAYS = 7
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
}


def daily_value(metric: str, day: date) -> float:
    """The figure of ``metric`` on ``day``: deterministic, so a test can check what was stored."""
    digest = zlib.crc32(f"{metric}|{day.isoformat()}".encode())
    return round(100.0 + (digest % 1_000_000) / 100.0, 2)


def page_count(days: int) -> int:
    return max(1, math.ceil(days / PAGE_DAYS))


@dataclass
class TokenStats:
    requests: int = 0
    violations: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    first_at: float = 0.0  # time.monotonic() of the first request's arrival
    last_at: float = 0.0  # time.monotonic() of the last response's sending


class FakePlatform:
    def __init__(self, latency: float, max_in_flight: int) -> None:
        self.latency = latency
        self.max_in_flight = max_in_flight
        self.tokens: dict[str, TokenStats] = {}

    # --- HTTP plumbing --------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                status, body, extra = await self.route(method, target, headers)
                payload = json.dumps(body, separators=(",", ":")).encode()
                head_out = (
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                    "content-type: application/json\r\n"
                    f"content-length: {len(payload)}\r\n{extra}\r\n"
                )
                writer.write(head_out.encode("latin-1") + payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, ValueError):
            return
        finally:
            writer.close()

    async def route(
        self, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, Any, str]:
        url = urlsplit(target)
        if url.path == "/_stats" and method == "GET":
            return 200, {"tokens": {t: asdict(s) for t, s in self.tokens.items()}}, ""
        if url.path == "/_reset" and method == "POST":
            self.tokens.clear()
            return 200, {"reset": True}, ""
        parts = url.path.split("/")
        # ["", "v1", "metrics", "{metric}", "daily"]
        if method != "GET" or len(parts) != 5 or parts[1:3] != ["v1", "metrics"]:
            return 404, {"error": f"no route {method} {url.path}"}, ""
        if parts[4] != "daily":
            return 404, {"error": f"no route {method} {url.path}"}, ""
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return 401, {"error": "a bearer token is required"}, ""
        return await self.daily(auth[7:].strip(), unquote(parts[3]), parse_qs(url.query))

    # --- the platform ---------------------------------------------------------------------------

    async def daily(
        self, token: str, metric: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, str]:
        stats = self.tokens.get(token)
        if stats is None:
            stats = self.tokens[token] = TokenStats(first_at=time.monotonic())
        stats.requests += 1
        if stats.in_flight >= self.max_in_flight:
            stats.violations += 1
            stats.last_at = time.monotonic()
            error = f"more than {self.max_in_flight} requests in flight for this token"
            return 429, {"error": error}, "retry-after: 1\r\n"
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            await asyncio.sleep(self.latency)
            return self.page(metric, query)
        finally:
            # Released before the answer is written, so the client can't see the answer (and
            # send its next request) while this one still counts as in flight.
            stats.in_flight -= 1
            stats.last_at = time.monotonic()

    def page(self, metric: str, query: dict[str, list[str]]) -> tuple[int, Any, str]:
        try:
            start = date.fromisoformat(query["from"][0])
            end = date.fromisoformat(query["to"][0])
            page = int(query.get("page", ["1"])[0])
        except (KeyError, IndexError, ValueError):
            return 400, {"error": "from and to (YYYY-MM-DD) and an integer page are required"}, ""
        if end < start or page < 1 or not metric:
            return 400, {"error": "empty window, page below 1 or no metric"}, ""
        total = page_count((end - start).days + 1)
        first = start + timedelta(days=PAGE_DAYS * (page - 1))
        last = min(end, first + timedelta(days=PAGE_DAYS - 1))
        data = []
        day = first
        while day <= last:
            data.append({"date": day.isoformat(), "value": daily_value(metric, day)})
            day += timedelta(days=1)
        return 200, {"data": data, "next_page": page + 1 if page < total else None}, ""


async def serve(host: str, port: int, latency: float, max_in_flight: int) -> None:
    platform = FakePlatform(latency, max_in_flight)
    # A deep backlog: 20 sources x 10 connections arrive at once, and a dropped SYN costs 1 s.
    server = await asyncio.start_server(platform.handle, host, port, backlog=2048)
    bound = server.sockets[0].getsockname()[1]
    print(f"ready {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--max-in-flight", type=int, default=10)
    args = parser.parse_args()
    coro = serve(args.host, args.port, args.latency_ms / 1000, args.max_in_flight)
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        os._exit(0)
