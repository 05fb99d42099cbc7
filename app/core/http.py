"""The one HTTP layer every connector uses.

Connectors never build their own client: the sync engine calls :func:`build_client` and hands
the result in. That keeps the cross-cutting duties in one place (SPEC section 4):

- retries with exponential backoff and jitter on 429/5xx and connection errors, honouring
  ``Retry-After`` (stamina);
- a per-source rate limit and concurrency bound (aiolimiter, a semaphore);
- refusal of loopback/private/link-local targets after DNS resolution, on every redirect hop
  (SPEC section 5, ``KRSYNC_ALLOW_PRIVATE_NETWORKS``);
- OAuth2 token refresh with the refreshed token handed back for encrypted storage (Authlib);
- errors whose text carries no secret (:class:`~app.core.redact.Redactor`), and credentials
  that go to their own origin only, redirects and next links included (:class:`CredentialGuard`);
- a count of the calls made, for ``SyncRun.api_calls``.

The duties are layered as httpx transports because httpx sends every request *and every
redirect hop* through the client's transport; a check done in ``AsyncClient.send`` would miss
the hops. From the outside in::

    CredentialGuard -> RetryTransport -> PrivateNetworkGuard -> [PacingTransport]
        -> ThrottleTransport -> [PacingTransport] -> httpx.AsyncHTTPTransport

so no hop carries a credential to an origin it doesn't belong to, each attempt is re-checked
against DNS right before it waits for a slot and is sent, and a backoff sleep holds neither a
concurrency slot nor rate-limit budget. The two pacing transports (only for a connector that
reads its platform's usage headers) share one :class:`PacingGate`: the outer one holds a request
before it takes a slot, the inner one again right before it leaves, so requests that were
already queued for a slot when the headers said to hold wait too.

Everything is passed in as parameters; nothing here reads settings or touches the database.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import socket
import ssl
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiolimiter
import authlib.deprecate  # noqa: F401  (installs Authlib's "always" filter before ours)
import httpx
import stamina

from app.core.redact import RedactingFilter, Redactor, register_secrets, secrets_in
from connectors.base import (
    ForeignOriginError,
    OtherOrigins,
    Pacer,
    RateLimited,
    TokenRefreshError,
    excerpt,
    origin_of,
    parse_retry_after,
    retry_after,
)
from connectors.netguard import non_public_reason

log = logging.getLogger("krsync.http")

# Loggers that see raw exceptions before this layer redacts them get a filter of their own, so
# their records are clean before any handler (JSON included) formats them.
for _name in ("stamina", "httpx", "httpcore", "authlib"):
    logging.getLogger(_name).addFilter(RedactingFilter())

with warnings.catch_warnings():
    # Authlib nudges towards its "httpx2" fork; krsync depends on httpx proper on purpose.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from authlib.common.errors import AuthlibBaseError
    from authlib.integrations.httpx_client import AsyncOAuth2Client

__all__ = [
    "ATTEMPTS_EXTENSION",
    "ORIGIN_EXTENSION",
    "RETRY_STATUSES",
    "USER_AGENT",
    "CredentialGuard",
    "HttpLayerError",
    "HttpStats",
    "HttpStatusError",
    "KrsyncClient",
    "KrsyncOAuth2Client",
    "OAuth2Settings",
    "OAuthRefreshError",
    "PacingClock",
    "PacingGate",
    "PacingTransport",
    "PrivateNetworkError",
    "PrivateNetworkGuard",
    "RetryTransport",
    "ThrottleTransport",
    "build_client",
    "check_public_host",
    "parse_retry_after",
    "resolve_host",
    "retry_after_seconds",
]

USER_AGENT = "krsync/0.1"
#: Statuses that mean "try again later": rate limited, or the platform is having a bad moment.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
#: Extension key on a response: how many attempts it took (for error messages).
ATTEMPTS_EXTENSION = "krsync.attempts"
#: Extension key on a request: the origin its first hop went to (redirect hops inherit it).
ORIGIN_EXTENSION = "krsync.origin"

# Backoff between attempts when the server gives no Retry-After: ~1 s, 2 s, 4 s (+ jitter),
# long enough to ride out a rolling 10-second window without stalling a nightly run.
_WAIT_INITIAL = 1.0
_WAIT_MAX = 30.0
_WAIT_JITTER = 1.0

TokenCallback = Callable[[dict[str, Any]], Awaitable[None] | None]
Resolver = Callable[[str, int], Awaitable[list[str]]]


# --------------------------------------------------------------------------- errors and stats


class PrivateNetworkError(Exception):
    """A request targeted a loopback, private, link-local or otherwise internal address.

    Not retried and not an :class:`HttpLayerError`: it is a configuration problem (a
    ``base_url`` or a redirect pointing inside the network), the engine classifies it as such.
    """


class HttpLayerError(Exception):
    """A request failed in the HTTP layer; the message is redacted and says what happened.

    ``status_code`` is None for transport failures (DNS, connect, timeout, protocol).
    ``transient`` tells the engine whether the next run may succeed without a config change.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        attempts: int | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.attempts = attempts
        self._transient = transient

    @property
    def transient(self) -> bool:
        if self._transient is not None:
            return self._transient
        return self.status_code is None or self.status_code in RETRY_STATUSES


class HttpStatusError(HttpLayerError):
    """An error status, raised by :meth:`KrsyncClient.raise_for_status` (never by ``send``).

    Connectors map it onto their own errors: 401/403 to an auth error, 404 to a config error,
    429 to ``RateLimited(retry_after)``, 5xx to a retriable error.
    """


class OAuthRefreshError(HttpLayerError, TokenRefreshError):
    """The token endpoint refused or failed to refresh the access token.

    Almost always a revoked or expired refresh token: the source needs new credentials.
    Connectors see it as ``connectors.base.TokenRefreshError`` (they import nothing from app/).
    """

    @property
    def transient(self) -> bool:
        return self.status_code is not None and self.status_code in RETRY_STATUSES


@dataclass
class HttpStats:
    """What one client did, recorded on the ``SyncRun`` (``api_calls`` = ``requests``)."""

    requests: int = 0  # attempts actually sent, token refreshes and redirect hops included
    retries: int = 0
    rate_limited: int = 0  # 429 responses seen


# ------------------------------------------------------------------------------- Retry-After


retry_after_seconds = retry_after


# ----------------------------------------------------------------------------- retry transport


class _RetryableStatus(Exception):
    """Carries a retryable response through stamina, which retries on exceptions only."""

    def __init__(self, response: httpx.Response, delay: float | None) -> None:
        # No URL in the text: stamina's retry hooks log this exception's repr.
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.delay = delay


def _is_retryable_transport_error(exc: BaseException) -> bool:
    # UnsupportedProtocol, LocalProtocolError and ProxyError will fail the same way again.
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def _retry_hook(exc: Exception) -> bool | float:
    """stamina's ``on`` predicate; a float overrides the backoff with the server's wish."""
    if isinstance(exc, _RetryableStatus):
        return exc.delay if exc.delay is not None else True
    return _is_retryable_transport_error(exc)


async def _buffered(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    """Read and close a (small, error) response so its connection is freed before a backoff.

    The raw, still content-encoded bytes are kept with the original headers, so the copy
    decodes exactly like the original would have.
    """
    if response.is_closed:  # built in memory (a mock transport): holds no connection
        return response
    try:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    copy = httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(body),
        extensions=dict(response.extensions),
        request=request,
    )
    try:
        copy.read()  # in memory already: a platform's retry_after reader may look at the body
    except httpx.DecodingError:
        pass  # left to whoever reads it next, who gets the same error
    return copy


#: Reads how long a platform wants us to wait from a 429/5xx response (``Retry-After`` by default;
#: X says it with ``x-rate-limit-reset``), so the wait replaces the blind backoff.
RetryAfter = Callable[[httpx.Response], float | None]


class RetryTransport(httpx.AsyncBaseTransport):
    """Retries an attempt on 429/5xx and connection errors, through stamina.

    A ``Retry-After`` up to ``max_retry_after`` replaces the backoff (stamina lets the ``on``
    hook return the delay). A longer one is not waited: the response is returned as-is so
    the connector raises ``RateLimited(retry_after)`` and the engine decides with its time
    budget. When attempts run out, the last response is returned, not raised, so the
    connector can still read the vendor's error body. Tests speed this up with
    ``stamina.set_testing(True, attempts=..., cap=True)``, which zeroes every wait.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        stats: HttpStats,
        max_attempts: int = 4,
        max_retry_after: float = 60.0,
        wait_initial: float = _WAIT_INITIAL,
        wait_max: float = _WAIT_MAX,
        wait_jitter: float = _WAIT_JITTER,
        retry_after: RetryAfter = retry_after_seconds,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._retry_after = retry_after
        self._inner = inner
        self._stats = stats
        self._max_attempts = max_attempts
        self._max_retry_after = max_retry_after
        self._wait_initial = wait_initial
        self._wait_max = wait_max
        self._wait_jitter = wait_jitter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Buffer the body so every attempt can send it again (streamed bodies are single-use).
        await request.aread()
        # The first attempt goes out without stamina: setting up a retry context costs more CPU
        # than the rest of this stack, and almost every request succeeds at once. A first
        # attempt that fails is replayed as stamina's own first attempt, so its hooks, backoff
        # and attempt count are what they would have been.
        try:
            return await self._attempt(request, 1)
        except _RetryableStatus as exc:
            first_failure: Exception = exc
        except Exception as exc:
            if not _is_retryable_transport_error(exc):
                raise
            first_failure = exc
        attempts = 0
        try:
            async for attempt in stamina.retry_context(
                on=_retry_hook,
                attempts=self._max_attempts,
                timeout=None,  # bounded by attempts and max_retry_after instead
                wait_initial=self._wait_initial,
                wait_max=self._wait_max,
                wait_jitter=self._wait_jitter,
            ):
                with attempt:
                    attempts = attempt.num
                    if attempts == 1:
                        raise first_failure
                    return await self._attempt(request, attempts)
        except _RetryableStatus as exhausted:
            return _tagged(exhausted.response, attempts)
        raise AssertionError("unreachable: stamina either returns or re-raises")

    async def _attempt(self, request: httpx.Request, attempts: int) -> httpx.Response:
        """One attempt; a retryable status is raised as :class:`_RetryableStatus`."""
        request.extensions[ATTEMPTS_EXTENSION] = attempts  # for error messages
        if attempts > 1:
            self._stats.retries += 1
        response = await self._inner.handle_async_request(request)
        if response.status_code not in RETRY_STATUSES:
            return _tagged(response, attempts)
        response = await _buffered(response, request)
        delay = self._retry_after(response)
        if delay is not None and delay > self._max_retry_after:
            return _tagged(response, attempts)
        raise _RetryableStatus(response, delay)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _tagged(response: httpx.Response, attempts: int) -> httpx.Response:
    response.extensions[ATTEMPTS_EXTENSION] = attempts
    return response


# ------------------------------------------------------------------- private-network guard


async def resolve_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, as the connection would see them."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_public_host(url: httpx.URL, *, resolver: Resolver | None = None) -> None:
    """Raise :class:`PrivateNetworkError` unless every address of the URL's host is public.

    Every address must pass, not just one: the connection may pick any of them.
    """
    if url.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"only http and https are allowed, not {url.scheme!r}")
    host = url.raw_host.decode("ascii")
    if not host:
        raise PrivateNetworkError("refusing a request without a host")
    port = url.port or (443 if url.scheme == "https" else 80)
    resolve = resolver if resolver is not None else resolve_host
    try:
        addresses = await resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise httpx.ConnectError(f"could not resolve host {host!r}: {exc}") from None
    for address in addresses:
        reason = non_public_reason(address)
        if reason is not None:
            raise PrivateNetworkError(
                f"refusing to connect to {host!r}: it resolves to {address}, a {reason} "
                "address (set KRSYNC_ALLOW_PRIVATE_NETWORKS=true for on-premises sources)"
            )


class PrivateNetworkGuard(httpx.AsyncBaseTransport):
    """Refuses requests, redirect hops included, whose host resolves to an internal address.

    Resolution happens right before the request is handed on; the connection pool resolves
    again when it connects, so a DNS-rebinding attacker with a tiny TTL could still slip
    through. Accepted: the guard is against configuration mistakes and naive SSRF.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *, resolver: Resolver | None = None):
        self._inner = inner
        self._resolver = resolver

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            await check_public_host(request.url, resolver=self._resolver)
        except httpx.RequestError as exc:
            exc.request = request  # httpx's error wrapping expects a request on it
            raise
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# ------------------------------------------------------------------------- credential guard


class CredentialGuard(httpx.AsyncBaseTransport):
    """Sends the source's credentials to the origins they belong to only, on every hop.

    httpx drops ``Authorization`` on a redirect to another origin but keeps every other header,
    so a key in ``X-API-Key`` (or Pipedrive's ``x-api-token``) followed a redirect anywhere; and
    a URL a platform hands out (a ``Link: rel="next"``) may name any host. Here every request
    and redirect hop is judged as it is about to leave. One bound for an origin outside
    ``origins`` (default: the origin of its first hop, so that only redirects are judged) is
    refused with a :class:`ForeignOriginError` when it holds a credential (a header, the URL,
    the body) or continues a request that held one: following without the credentials is a
    choice (``other_origins="strip"``: the headers holding one are dropped), not a default,
    since the other origin then answers for the source. A credential in the URL or the body
    can't be dropped: always refused.

    A credential is what the client's redactor knows (the source's decrypted values, refreshed
    tokens), in every spelling it masks. Whether the first hop held one is kept, with its
    origin, in an extension httpx copies from hop to hop, as it does the attempt count.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        source_name: str,
        redactor: Redactor,
        origins: Sequence[str] = (),
        other_origins: OtherOrigins = "refuse",
    ) -> None:
        self._inner = inner
        self._source_name = source_name
        self._redactor = redactor
        self._origins = frozenset(origins)
        self._strip = other_origins == "strip"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        here = origin_of(request.url)
        started = request.extensions.get(ORIGIN_EXTENSION)
        if started is None:
            held = bool(self._headers_holding(request)) or await self._fixed_holds(request)
            started = request.extensions[ORIGIN_EXTENSION] = (here, held)
        first, credentialed = started
        allowed = self._origins or frozenset({first})
        if here not in allowed:
            await self._leave_credentials_behind(request, here, first, credentialed, allowed)
        return await self._inner.handle_async_request(request)

    def _headers_holding(self, request: httpx.Request) -> list[str]:
        return [name for name, value in request.headers.items() if self._redactor.finds(value)]

    async def _fixed_holds(self, request: httpx.Request) -> bool:
        """Whether what can't be taken out of the request (query, userinfo, body) holds one.

        Not the path: a credential rarely goes there, and a short one (a username is masked
        too) would match a path segment by chance.
        """
        url, finds = request.url, self._redactor.finds
        body = (await request.aread()).decode("utf-8", "replace")
        return (
            finds(url.query.decode("ascii", "replace"))
            or finds(body)
            or finds(url.userinfo.decode("ascii", "replace"))
        )

    async def _leave_credentials_behind(
        self,
        request: httpx.Request,
        here: str,
        first: str,
        credentialed: bool,
        allowed: frozenset[str],
    ) -> None:
        carrying = self._headers_holding(request)
        fixed = await self._fixed_holds(request)
        if not (carrying or credentialed or fixed):
            return  # nothing of the source's goes there
        if self._strip and not fixed:
            for name in carrying:
                del request.headers[name]
            log.info("%s: followed to %s without the credentials", self._source_name, here)
            return
        where = f"a redirect from {first} led to {here}" if first != here else f"{here} was asked"
        owners = ", ".join(sorted(allowed))
        raise ForeignOriginError(
            self._redactor.redact(
                f"{self._source_name}: {where}, but the source's credentials go to {owners} "
                "only: refused rather than sent there"
            ),
            origin=here,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


# ---------------------------------------------------------------------- throttle transport


class _SlotReleasingStream(httpx.AsyncByteStream):
    """Holds the concurrency slot until the body is read, so a download counts as in flight."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._release()


def _make_limiter(rate_per_second: float) -> aiolimiter.AsyncLimiter:
    """One request every ``1 / rate`` seconds, with no burst.

    A bucket of ``rate`` lets ``rate`` requests out at once and then one every ``1 / rate``:
    up to ``2 * rate - 1`` in the first second, which a platform counting per second (HubSpot's
    search: 5) answers with 429. A bucket of one never lets more than ``rate`` out in any
    second.
    """
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    return aiolimiter.AsyncLimiter(1, 1.0 / rate_per_second)


class ThrottleTransport(httpx.AsyncBaseTransport):
    """Bounds concurrent requests and their rate per source, and counts what is sent.

    Each attempt takes a slot first and rate budget second, so the moment a request leaves
    respects the rate even when many tasks were waiting for slots.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        stats: HttpStats,
        max_concurrency: int = 10,
        rate_per_second: float | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._inner = inner
        self._stats = stats
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._limiter = _make_limiter(rate_per_second) if rate_per_second else None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._semaphore.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._semaphore.release()

        try:
            if self._limiter is not None:
                await self._limiter.acquire()
            self._stats.requests += 1
            response = await self._inner.handle_async_request(request)
        except BaseException:
            release()
            raise
        if response.status_code == 429:
            self._stats.rate_limited += 1
        stream = response.stream
        if isinstance(stream, httpx.AsyncByteStream) and not response.is_closed:
            response.stream = _SlotReleasingStream(stream, release)
        else:  # already in memory (built by a mock transport): nothing left in flight
            release()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# ------------------------------------------------------------------------------------ pacing


class PacingClock:
    """The time :class:`PacingGate` reads and sleeps on; the one seam tests replace (a clock
    whose sleep returns at once), through ``build_client(pacing_clock=...)`` or
    :data:`PACING_CLOCK`."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


#: The clock of every client built without one of its own.
PACING_CLOCK = PacingClock()


class PacingGate:
    """One source's hold: the platform's usage headers, read off every answer by its
    :data:`~connectors.base.Pacer`, say when the next request may leave.

    Without a hold, :meth:`admit` is one attribute test (no lock, no clock read). A hold up to
    ``max_hold`` is waited out by every request that reaches the gate meanwhile; a longer one
    refuses them with ``RateLimited`` (what is left of it as ``retry_after``), unsent. A later
    answer may lengthen a hold, never shorten it: a waiting request looks again when it wakes.
    """

    def __init__(
        self,
        pace: Pacer,
        *,
        source_name: str,
        max_hold: float = 60.0,
        clock: PacingClock | None = None,
    ) -> None:
        self._pace = pace
        self._source_name = source_name
        self._max_hold = max_hold
        self._clock = clock if clock is not None else PACING_CLOCK
        self._until = 0.0  # monotonic time the hold ends; 0.0: no hold
        self._reason = ""

    def observe(self, response: httpx.Response) -> None:
        hold = self._pace(response)
        if hold is None or hold.seconds <= 0:
            return
        until = self._clock.monotonic() + hold.seconds
        if until > self._until:
            self._until, self._reason = until, hold.reason

    async def admit(self) -> None:
        while self._until:
            left = self._until - self._clock.monotonic()
            if left <= 0:
                self._until = 0.0
                return
            if left > self._max_hold:
                raise RateLimited(
                    f"{self._reason}: the next call waits {left:.0f} s, so it was not sent "
                    "rather than spend a call the platform would refuse",
                    left,
                )
            log.info("%s: holding requests %.1f s (%s)", self._source_name, left, self._reason)
            await self._clock.sleep(left)


class PacingTransport(httpx.AsyncBaseTransport):
    """Passes a request through :meth:`PacingGate.admit` and shows the answer to the gate.

    Built twice around :class:`ThrottleTransport` (see the module's docstring). The inner one
    is given ``stats``: a request it refuses was counted as sent by the throttle, and wasn't.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        gate: PacingGate,
        observe: bool,
        stats: HttpStats | None = None,
    ) -> None:
        self._inner = inner
        self._gate = gate
        self._observe = observe
        self._stats = stats

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            await self._gate.admit()
        except RateLimited:
            if self._stats is not None:
                self._stats.requests -= 1
            raise
        response = await self._inner.handle_async_request(request)
        if self._observe:
            self._gate.observe(response)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# ------------------------------------------------------------------------------------ clients


def _public_url(url: httpx.URL) -> str:
    """The URL without query, fragment or userinfo: the parts that carry keys and tokens."""
    return str(url.copy_with(query=None, fragment=None, username=None, password=None))


class KrsyncClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose failures are redacted :class:`HttpLayerError` s.

    Use it like httpx; check statuses with :meth:`raise_for_status` (never
    ``response.raise_for_status()``, whose message quotes the full URL, query string
    included). ``stats`` counts what was sent.
    """

    source_name: str
    stats: HttpStats
    redactor: Redactor

    def __init__(
        self,
        *,
        source_name: str,
        stats: HttpStats | None = None,
        redactor: Redactor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_krsync(source_name, stats, redactor)

    def _init_krsync(
        self, source_name: str, stats: HttpStats | None, redactor: Redactor | None
    ) -> None:
        self.source_name = source_name
        self.stats = stats if stats is not None else HttpStats()
        self.redactor = redactor if redactor is not None else Redactor()

    def redact(self, text: str) -> str:
        """``text`` with this source's secrets masked (the :class:`connectors.base.HttpClient`
        a connector quotes a platform's words through)."""
        return self.redactor.redact(text)

    def add_secrets(self, values: Sequence[str]) -> None:
        """Redact more values from this client's errors and from every log line."""
        self.redactor.add(values)
        register_secrets(values)

    async def send(self, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
        try:
            return await super().send(request, *args, **kwargs)
        except httpx.HTTPError as exc:
            # `from None`: the original exception's text is exactly what may hold a secret.
            raise self._wrap_transport_error(exc, request) from None

    def _wrap_transport_error(self, exc: httpx.HTTPError, request: httpx.Request) -> HttpLayerError:
        try:
            failing = exc.request  # the redirect hop that failed, not always the first request
        except RuntimeError:
            failing = request
        attempts = failing.extensions.get(ATTEMPTS_EXTENSION)
        after = f" after {attempts} attempts" if isinstance(attempts, int) and attempts > 1 else ""
        if isinstance(exc, httpx.TooManyRedirects):
            what = f"more than {MAX_REDIRECTS} redirects"
        else:
            what = f"{type(exc).__name__}: {str(exc) or 'no detail'}"
        message = f"{self.source_name}: {failing.method} {_public_url(failing.url)} failed{after}"
        return HttpLayerError(
            self.redactor.redact(f"{message}: {what}"),
            attempts=attempts if isinstance(attempts, int) else None,
            # an invalid URL or an unsupported scheme will fail the same way next run
            transient=_is_retryable_transport_error(exc),
        )

    def raise_for_status(self, response: httpx.Response) -> httpx.Response:
        """Raise :class:`HttpStatusError` for a 4xx/5xx response, else return it.

        The message names the source, the status, the URL without its query string, the
        attempts made and the start of the vendor's error body, all redacted: the body is
        usually what tells the user what to fix.
        """
        if response.is_success or response.is_informational or response.is_redirect:
            return response
        attempts = response.extensions.get(ATTEMPTS_EXTENSION)
        after = f" after {attempts} attempts" if isinstance(attempts, int) and attempts > 1 else ""
        try:
            body = excerpt(response.text, self.redactor.redact)
        except (httpx.ResponseNotRead, UnicodeDecodeError, LookupError):
            body = ""
        message = (
            f"{self.source_name}: {response.request.method} {_public_url(response.request.url)} "
            f"answered {response.status_code} {response.reason_phrase}{after}"
        )
        if body:
            message += f": {body}"
        raise HttpStatusError(
            self.redactor.redact(message),
            status_code=response.status_code,
            retry_after=retry_after_seconds(response),
            attempts=attempts if isinstance(attempts, int) else None,
        )


@dataclass(frozen=True)
class OAuth2Settings:
    """What a connector knows about its OAuth2 client and the stored token."""

    token_endpoint: str
    client_id: str
    client_secret: str
    token: dict[str, Any] = field(default_factory=dict)
    auth_method: str = "client_secret_post"
    scope: str | None = None


def _refused_refresh(response: httpx.Response) -> httpx.Response:
    """A 4xx/5xx token answer is a refusal even when its body lacks OAuth's ``error`` field.

    Authlib reads any JSON body without ``error`` as a token; a platform answering
    ``{"success": false, "message": ...}`` would then fail later with a confusing type error.
    """
    if response.status_code < 400:
        return response
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and "error" in body):
        response.raise_for_status()
    return response  # RFC 6749's error body: Authlib raises with its `error` code in the text


class KrsyncOAuth2Client(AsyncOAuth2Client, KrsyncClient):  # type: ignore[misc]
    """Authlib's ``AsyncOAuth2Client`` on the krsync transport stack.

    Authlib refreshes proactively once ``expires_at`` has passed (minus a minute's leeway).
    On top of that, a 401 to a request that carried a token triggers one forced refresh and
    one repeat, because platforms revoke access tokens before their stated expiry (password
    change, a new token minted elsewhere). Refresh failures become :class:`OAuthRefreshError`.
    Only ``request`` (hence ``get``/``post``/...) repeats after a 401; ``stream`` does not.
    """

    def __init__(
        self,
        *,
        source_name: str,
        stats: HttpStats | None = None,
        redactor: Redactor | None = None,
        **kwargs: Any,
    ) -> None:
        # Authlib calls httpx.AsyncClient.__init__ itself, bypassing KrsyncClient.__init__.
        AsyncOAuth2Client.__init__(self, **kwargs)
        self._init_krsync(source_name, stats, redactor)
        self.register_compliance_hook("refresh_token_response", _refused_refresh)
        # A code exchange (the OAuth connect flow) reads its answer the same way.
        self.register_compliance_hook("access_token_response", _refused_refresh)

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        withhold_token: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        **kwargs: Any,
    ) -> httpx.Response:
        uses_token = not withhold_token and auth is httpx.USE_CLIENT_DEFAULT
        sent_token = self.token.get("access_token") if uses_token and self.token else None
        # Named rather than super(): mypy resolves super() to httpx, which lacks withhold_token.
        response: httpx.Response = await AsyncOAuth2Client.request(
            self, method, url, withhold_token=withhold_token, auth=auth, **kwargs
        )
        if (
            response.status_code == 401
            and uses_token
            and self.token.get("refresh_token")
            and self.metadata.get("token_endpoint")
        ):
            await response.aclose()
            await self._refresh_after_401(sent_token)
            response = await AsyncOAuth2Client.request(
                self, method, url, withhold_token=withhold_token, auth=auth, **kwargs
            )
        return response

    async def ensure_active_token(self, token: Any) -> None:
        try:
            await super().ensure_active_token(token)
        except (AuthlibBaseError, httpx.HTTPStatusError) as exc:
            raise self._refresh_error(exc) from None

    async def _refresh_after_401(self, rejected_access_token: str | None) -> None:
        async with self._token_refresh_lock:
            if self.token.get("access_token") != rejected_access_token:
                return  # another task refreshed while this one waited
            try:
                await self.refresh_token(
                    self.metadata["token_endpoint"], refresh_token=self.token["refresh_token"]
                )
            except (AuthlibBaseError, httpx.HTTPStatusError) as exc:
                raise self._refresh_error(exc) from None

    def _refresh_error(self, exc: Exception) -> OAuthRefreshError:
        status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        detail = str(exc) if not isinstance(exc, httpx.HTTPStatusError) else f"HTTP {status}"
        advice = (
            "the token endpoint is unavailable"
            if status in RETRY_STATUSES
            else "the refresh token may be revoked or expired, reconnect the source"
        )
        return OAuthRefreshError(
            self.redactor.redact(
                f"{self.source_name}: refreshing the OAuth2 access token failed ({detail}); "
                f"{advice}"
            ),
            status_code=status,
        )


# ------------------------------------------------------------------------------ build_client


_SSL_CONTEXT_LOCK = threading.Lock()


@functools.cache
def _build_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def ssl_context() -> ssl.SSLContext:
    """One TLS context for all clients, connectors' and notification channels' alike (it is
    configuration, never changed once built): loading the CA bundle costs 20-50 ms of CPU, and
    more on a loaded machine. Under a lock, so that a client asking while
    :func:`warm_ssl_context` builds it waits for that one."""
    with _SSL_CONTEXT_LOCK:
        return _build_ssl_context()


def warm_ssl_context() -> None:
    """Builds the process's TLS context in a thread of its own, unless it is built already.

    A sync calls this before reading its runs: OpenSSL loads the CA bundle without the GIL, so
    the context is ready when the first client is built, instead of delaying the first request.
    """
    if _build_ssl_context.cache_info().currsize:
        return
    threading.Thread(target=ssl_context, name="krsync-tls-context", daemon=True).start()


def _initial_token(token: Mapping[str, Any]) -> dict[str, Any]:
    """A token Authlib will refresh when it must.

    Sources often store only a refresh token (``client_id``/``client_secret``/
    ``refresh_token`` credentials): an ``expires_at`` of 0 makes the first request refresh.
    Authlib only compares integer ``expires_at`` values, so floats are truncated.
    """
    result = dict(token)
    result.setdefault("token_type", "Bearer")
    if not result.get("access_token"):
        result["access_token"] = ""
        result["expires_at"] = 0
    elif result.get("expires_at") is not None:
        try:
            result["expires_at"] = int(float(result["expires_at"]))
        except (TypeError, ValueError):
            result["expires_at"] = 0  # unreadable: refresh rather than send a dead token
    return result


def build_client(
    *,
    source_name: str,
    secrets: Sequence[str] = (),
    base_url: str = "",
    timeout: float = 30.0,
    max_attempts: int = 4,
    max_retry_after: float = 60.0,
    rate_per_second: float | None = None,
    max_concurrency: int = 10,
    allow_private: bool = False,
    oauth: OAuth2Settings | None = None,
    on_token_update: TokenCallback | None = None,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    retry_after: RetryAfter | None = None,
    credential_origins: Sequence[str] = (),
    other_origins: OtherOrigins = "refuse",
    pace: Pacer | None = None,
    max_hold: float = 60.0,
    pacing_clock: PacingClock | None = None,
) -> KrsyncClient:
    """The HTTP client for one source and one run; use it as ``async with``.

    ``secrets`` are the source's decrypted credential values (``secrets_in(credentials)``);
    they are masked in this client's errors and registered for the log filter. With ``oauth``
    the client is Authlib's ``AsyncOAuth2Client`` and ``on_token_update`` receives every
    refreshed token (refresh-token rotation included) so the caller can store it encrypted.
    ``transport`` replaces the innermost network transport (tests, unusual proxies);
    ``retry_after`` reads a platform's own wait header where it has no ``Retry-After``.
    ``credential_origins`` and ``other_origins`` say where the credentials may go
    (:class:`CredentialGuard`); ``pace`` and ``max_hold`` hold the source's requests while the
    platform's usage headers say so (:class:`PacingGate`, on ``pacing_clock``).
    """
    stats = HttpStats()
    redactor = Redactor(secrets)
    # An Authorization header is a credential whatever it encodes (Basic's base64 of a key).
    redactor.add(
        value.split(" ", 1)[-1]
        for name, value in (headers or {}).items()
        if name.lower() in ("authorization", "proxy-authorization")
    )
    if oauth is not None:
        redactor.add([oauth.client_secret, *secrets_in(oauth.token)])
    register_secrets(redactor.secrets)

    inner = transport or httpx.AsyncHTTPTransport(
        verify=ssl_context(), retries=0, limits=httpx.Limits(max_connections=max_concurrency)
    )
    gate = None
    if pace is not None:
        gate = PacingGate(pace, source_name=source_name, max_hold=max_hold, clock=pacing_clock)
        inner = PacingTransport(inner, gate=gate, observe=True, stats=stats)
    stack: httpx.AsyncBaseTransport = ThrottleTransport(
        inner, stats=stats, max_concurrency=max_concurrency, rate_per_second=rate_per_second
    )
    if gate is not None:
        stack = PacingTransport(stack, gate=gate, observe=False)
    if not allow_private:
        stack = PrivateNetworkGuard(stack)
    stack = RetryTransport(
        stack,
        stats=stats,
        max_attempts=max_attempts,
        max_retry_after=max_retry_after,
        retry_after=retry_after or retry_after_seconds,
    )
    stack = CredentialGuard(
        stack,
        source_name=source_name,
        redactor=redactor,
        origins=credential_origins,
        other_origins=other_origins,
    )
    client_kwargs: dict[str, Any] = {
        "base_url": base_url,
        "timeout": httpx.Timeout(timeout),
        "headers": {"User-Agent": USER_AGENT, **(headers or {})},
        "follow_redirects": True,
        "max_redirects": MAX_REDIRECTS,
        "transport": stack,
        # No ~/.netrc credentials or environment proxies sneaking around the stack.
        "trust_env": False,
    }
    if oauth is None:
        return KrsyncClient(
            source_name=source_name, stats=stats, redactor=redactor, **client_kwargs
        )

    async def update_token(token: Mapping[str, Any], **_: Any) -> None:
        fresh = dict(token)
        values = secrets_in(fresh)
        redactor.add(values)
        register_secrets(values)
        if on_token_update is not None:
            outcome = on_token_update(fresh)
            if inspect.isawaitable(outcome):
                await outcome

    return KrsyncOAuth2Client(
        source_name=source_name,
        stats=stats,
        redactor=redactor,
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        token_endpoint_auth_method=oauth.auth_method,
        scope=oauth.scope,
        token=_initial_token(oauth.token),
        update_token=update_token,
        token_endpoint=oauth.token_endpoint,
        **client_kwargs,
    )
