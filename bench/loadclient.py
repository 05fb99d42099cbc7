"""A load generator that stays out of the measurement: keep-alive HTTP/1.1 on asyncio streams.

On a 2-core machine the client shares the CPU with the server and PostgreSQL, and httpx spends
about as much CPU per request as the server answering a cached read, so its own cost and the
scheduling it causes showed up as server latency. This client writes a GET and reads the
answer by ``Content-Length``, nothing more, as wrk or ab would; the benchmark still checks
every status and the bodies.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.common import BenchError


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes
    url: str

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class LoadClient:
    """``connections`` keep-alive connections; a request waits for a free one."""

    def __init__(self, base_url: str, headers: dict[str, str], connections: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise BenchError(f"the load client speaks plain http to host:port, not {base_url}")
        self.base_url = base_url
        self._host, self._port = parts.hostname, parts.port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"host: {self._host}:{self._port}\r\n{extra}\r\n"
        self._size = connections
        self._free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None

    async def __aenter__(self) -> LoadClient:
        self._free = asyncio.Queue()
        for _ in range(self._size):
            self._free.put_nowait(await asyncio.open_connection(self._host, self._port))
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._free is not None
        while not self._free.empty():
            _, writer = self._free.get_nowait()
            writer.close()

    async def get(self, path: str) -> Reply:
        assert self._free is not None, "use `async with LoadClient(...)`"
        reader, writer = await self._free.get()
        try:
            writer.write(f"GET {path} HTTP/1.1\r\n{self._head}".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(b":") for line in lines[1:] if line)
            }
            if b"content-length" not in headers:
                raise BenchError(f"GET {path}: an answer without Content-Length ({lines[0]!r})")
            body = await reader.readexactly(int(headers[b"content-length"]))
            if headers.get(b"connection", b"").lower() == b"close":
                writer.close()
                reader, writer = await asyncio.open_connection(self._host, self._port)
        except BaseException:
            writer.close()
            reader, writer = await asyncio.open_connection(self._host, self._port)
            raise
        finally:
            self._free.put_nowait((reader, writer))
        return Reply(status, body, f"{self.base_url}{path}")
