"""Google credentials for ``ga4`` and ``search_console``, and the bridge to the engine's client.

Both connectors take the same credentials (SPEC section 4): a service account's JSON key as an
object (``service_account_info``; google-auth signs the JWT assertion and exchanges it at the
key's own ``token_uri``) or an OAuth client with a refresh token (``client_id``,
``client_secret``, ``refresh_token``, optional ``token_uri``). google-auth does every token
exchange; krsync never builds an assertion or a refresh request by hand.

google-auth and the official GA4 client are blocking libraries built on ``requests``. Rather than
letting them open their own connections (which would bypass the engine's retries, rate limit,
private-network guard, call count and redaction), every request they make is carried over the
engine's ``httpx`` client by :class:`GoogleBridge`:

- :meth:`GoogleBridge.auth_request` is a ``google.auth.transport.Request`` for token calls;
- :meth:`GoogleBridge.adapter` is a ``requests`` transport adapter for an ``AuthorizedSession``.

The blocking code runs in a dedicated thread pool and hands each request back to the event loop
with ``asyncio.run_coroutine_threadsafe``. The pool is not the loop's default executor on
purpose: the engine's private-network guard resolves DNS through that executor, so blocked
bridge threads occupying it could wait forever on a resolution that has no thread left to run.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import google.oauth2.credentials
import google.oauth2.service_account
import httpx
import requests
import requests.adapters
from google.api_core import exceptions as gexc
from google.auth import crypt
from google.auth.transport.requests import AuthorizedSession
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from requests.structures import CaseInsensitiveDict

from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    ConnectorError,
    HttpClient,
    RetriableError,
    excerpt,
    retry_after,
)
from connectors.errors import Hint, Hints, Refusal, json_or_none

DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
#: How long a bridged call may take, retries and backoff included, before the thread gives up.
BRIDGE_TIMEOUT = 600.0
#: Headers ``requests`` adds for its own connection handling; httpx sets its own.
_HOP_HEADERS = frozenset(
    {"connection", "content-length", "accept-encoding", "user-agent", "transfer-encoding", "host"}
)
_THREADS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="krsync-google")
_URL = re.compile(r"(?i)^https?://[^/\s]+")
_SERVICE_ACCOUNT_KEYS = ("client_email", "private_key", "token_uri")

T = TypeVar("T")


# --- credentials ---------------------------------------------------------------------------------


class GoogleCredentials(BaseModel):
    """A service account key, or an OAuth client with a refresh token."""

    model_config = ConfigDict(extra="forbid")

    service_account_info: dict[str, Any] | None = Field(
        None,
        description="The service account's JSON key, pasted as an object "
        "(`client_email`, `private_key`, `token_uri`, ...).",
    )
    client_id: str | None = Field(None, description="OAuth client ID (with a refresh token).")
    client_secret: str | None = None
    refresh_token: str | None = None
    token_uri: str | None = Field(
        None, description=f"OAuth client only: the token endpoint ({DEFAULT_TOKEN_URI} if unset)."
    )

    @field_validator("service_account_info")
    @classmethod
    def _a_usable_key(cls, info: dict[str, Any] | None) -> dict[str, Any] | None:
        if info is None:
            return None
        missing = [k for k in _SERVICE_ACCOUNT_KEYS if not isinstance(info.get(k), str)]
        if missing:
            names = ", ".join(f"`{k}`" for k in missing)
            raise ValueError(f"the service account key lacks {names}: paste the whole JSON key")
        if info.get("type", "service_account") != "service_account":
            raise ValueError("this JSON key is not a service account key (`type`)")
        if not _URL.match(info["token_uri"]):
            raise ValueError("`token_uri` must be an http:// or https:// address")
        try:
            crypt.RSASigner.from_service_account_info(info)  # type: ignore[no-untyped-call]
        except (ValueError, TypeError, IndexError):
            # The parser's own message may quote the key: say what, never echo it.
            raise ValueError("`private_key` is not a PEM private key") from None
        return info

    @field_validator("token_uri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value):
            raise ValueError("`token_uri` must be an http:// or https:// address")
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> GoogleCredentials:
        oauth = [self.client_id, self.client_secret, self.refresh_token]
        if self.service_account_info is not None:
            if any(v is not None for v in [*oauth, self.token_uri]):
                raise ValueError(
                    "give either `service_account_info` or `client_id` + `client_secret` + "
                    "`refresh_token`, not both (a service account's `token_uri` is in its key)"
                )
            return self
        if any(v is None for v in oauth):
            raise ValueError(
                "give `service_account_info` (a service account's JSON key) or all of "
                "`client_id`, `client_secret` and `refresh_token`"
            )
        return self

    @property
    def is_service_account(self) -> bool:
        return self.service_account_info is not None


def build_credentials(creds: GoogleCredentials, scope: str) -> google.auth.credentials.Credentials:
    """google-auth credentials that fetch their access token at the right ``token_uri``.

    A service account gets explicit scopes, which makes google-auth exchange its signed JWT at
    the key's ``token_uri`` rather than sending a self-signed JWT as the bearer. An OAuth
    client's refresh token keeps the scopes it was granted: asking for others would fail.
    """
    try:
        if creds.service_account_info is not None:
            sa = google.oauth2.service_account.Credentials
            signed: google.auth.credentials.Credentials = sa.from_service_account_info(  # type: ignore[no-untyped-call]
                creds.service_account_info, scopes=[scope]
            )
            return signed
        return google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
            token=None,
            refresh_token=creds.refresh_token,
            token_uri=creds.token_uri or DEFAULT_TOKEN_URI,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
        )
    except (ValueError, TypeError, google.auth.exceptions.GoogleAuthError):
        raise ConnectorConfigError(
            "google-auth can't use these credentials: paste the service account's whole JSON key, "
            "or give `client_id`, `client_secret` and `refresh_token`"
        ) from None


def refresh_error(
    exc: google.auth.exceptions.RefreshError,
    creds: GoogleCredentials,
    redact: Callable[[str], str],
) -> ConnectorError:
    """The token endpoint's verdict, with what to change; never the assertion or the secret."""
    first = exc.args[0] if exc.args else ""
    detail = excerpt(first, redact, 200) if isinstance(first, str) else "refused"
    if getattr(exc, "retryable", False):
        return RetriableError(f"Google's token endpoint is having trouble ({detail})")
    if creds.is_service_account:
        advice = (
            "the service account key in `service_account_info` may have been deleted or "
            "disabled: create a new JSON key for the service account and update the "
            "source's credentials"
        )
    else:
        advice = (
            "the refresh token may be revoked or expired, or `client_id`/`client_secret` "
            "may be wrong: authorize again and update the source's credentials"
        )
    return ConnectorAuthError(f"Google refused the credentials ({detail}): {advice}")


def google_error(body: Any) -> tuple[str, str]:
    """``(status, message)`` from Google's error envelope ``{"error": {...}}``."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        return str(error.get("status") or ""), str(error.get("message") or "")
    if isinstance(error, str):  # OAuth-style {"error": "invalid_token"}
        return error, str(body.get("error_description") or "")
    return "", ""


def google_words(response: httpx.Response, body: Any) -> tuple[list[str], str]:
    """The classifier's reader of Google's envelope: its status, ``SERVICE_DISABLED`` when the
    project hasn't the API switched on, and its message."""
    status, message = google_error(body)
    disabled = "SERVICE_DISABLED" in response.text or "has not been used" in message
    return [status] + (["SERVICE_DISABLED"] if disabled else []), message


def google_hints(product: str, api: str) -> Hints:
    """What every Google API answers alike: a refused token, an API the project hasn't on."""
    return {
        401: f"Google refused the access token for {product} ({{said}}): check the source's "
        "credentials (`service_account_info`, or `client_id`/`client_secret`/`refresh_token`)",
        "SERVICE_DISABLED": Hint(
            f"the Google {api} API is not enabled in the Google Cloud project of these "
            "credentials: enable it in the Cloud console ({said})",
            ConnectorAuthError,
        ),
    }


def client_refusal(
    exc: gexc.GoogleAPICallError, mask: Callable[[str], str], **fields: Any
) -> Refusal:
    """An official Google client's exception (google-api-core's), read as the classifier reads
    an HTTP answer (:func:`google_words`): it carries the status and, where it kept it, the
    response with Google's envelope; ``fields`` are the templates' own."""
    response = getattr(exc, "response", None)
    body = json_or_none(response) if response is not None else None
    status, text = google_error(body) if body is not None else ("", str(exc.message or ""))
    said = excerpt(text, mask)
    disabled = "SERVICE_DISABLED" in str(exc.reason or "") or "disabled" in said.lower()
    return Refusal(
        status=exc.code or 0,
        said=said or status or f"HTTP {exc.code}",
        codes=tuple(c for c in (status, "SERVICE_DISABLED" if disabled else "") if c),
        retry_after=retry_after(response) if response is not None else None,
        mask=mask,
        fields=fields,
    )


# --- the bridge ----------------------------------------------------------------------------------


class _AuthResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class _AuthRequest(google.auth.transport.Request):
    """google-auth's token calls, carried by the engine's client."""

    def __init__(self, bridge: GoogleBridge) -> None:
        self._bridge = bridge

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _AuthResponse:
        response = self._bridge.send(method, url, dict(headers or {}), body, timeout)
        return _AuthResponse(response)

    def __deepcopy__(self, memo: dict[int, Any]) -> _AuthRequest:
        # google-auth deep-copies the request to look up a service account's "regional access
        # boundary" from a background thread that outlives the run and its client; it skips the
        # lookup when the copy fails, which is what an engine-owned client must make it do.
        raise TypeError("a bridged request belongs to one run's HTTP client and can't be copied")


class _BridgeAdapter(requests.adapters.BaseAdapter):
    """A ``requests`` adapter whose every request goes out through the engine's client."""

    def __init__(self, bridge: GoogleBridge) -> None:
        super().__init__()
        self._bridge = bridge

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        headers = {
            k: v.decode("latin-1") if isinstance(v, bytes) else v
            for k, v in request.headers.items()
            if k.lower() not in _HOP_HEADERS
        }
        if isinstance(request.body, str):
            body: bytes | None = request.body.encode()
        elif request.body is None or isinstance(request.body, bytes):
            body = request.body
        else:  # Google's clients send whole JSON or form bodies, never streams
            raise TypeError("the Google bridge carries whole bodies only")
        seconds = timeout[1] if isinstance(timeout, tuple) else timeout
        answer = self._bridge.send(
            request.method or "GET", request.url or "", headers, body, seconds
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.reason_phrase
        # The body is already decoded by httpx: drop the encoding headers that described it.
        response.headers = CaseInsensitiveDict(
            {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
            }
        )
        response.raw = io.BytesIO(answer.content)
        response.url = request.url or ""
        response.request = request
        response.encoding = answer.encoding
        return response

    def close(self) -> None:
        return None


class GoogleBridge:
    """Runs blocking Google client code in a thread; its HTTP goes through the engine's client."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tokens_seen: set[str] = set()
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a bridge thread, so the event loop stays free to send."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        return await self._loop.run_in_executor(_THREADS, functools.partial(fn, *args, **kwargs))

    async def authorized(
        self, creds: GoogleCredentials, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """:meth:`run` for code that may fetch a token with ``creds``: a token endpoint's refusal
        becomes :func:`refresh_error`'s error."""
        try:
            return await self.run(fn, *args, **kwargs)
        except google.auth.exceptions.RefreshError as exc:
            raise refresh_error(exc, creds, self.redact) from None

    def auth_request(self) -> google.auth.transport.Request:
        return _AuthRequest(self)

    def adapter(self) -> requests.adapters.BaseAdapter:
        return _BridgeAdapter(self)

    def carry(self, transport: T, credentials: Any, client_info: Any, package: str) -> T:
        """An official client's generated REST transport (google-api-core's), ``credentials``'
        token calls and its API calls alike carried over the engine's client; ``client_info``
        is the client's ``DEFAULT_CLIENT_INFO``, ``package`` what to update when it changes."""
        session = AuthorizedSession(  # type: ignore[no-untyped-call]
            credentials, auth_request=self.auth_request()
        )
        for prefix in ("http://", "https://"):
            session.mount(prefix, self.adapter())
        if not isinstance(getattr(transport, "_session", None), AuthorizedSession):
            raise RuntimeError(f"{package} changed its REST transport; update krsync")
        # The generated transport keys its wrapped methods by stubs that hold the session, so
        # they are prepared again once the bridged session is in place.
        transport._session = session  # type: ignore[attr-defined]
        transport._prep_wrapped_messages(client_info)  # type: ignore[attr-defined]
        return transport

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float | None,
    ) -> httpx.Response:
        """Called from a bridge thread: the request runs on the loop, this thread waits."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            raise RuntimeError("Google client code must run through GoogleBridge.run()")
        self.hold_bearer(headers)
        kwargs: dict[str, Any] = {"headers": headers, "content": body}
        if timeout is not None:
            kwargs["timeout"] = timeout
        # The coroutine is only created here; it runs on the loop, where the client lives.
        future = asyncio.run_coroutine_threadsafe(self.http.request(method, url, **kwargs), loop)
        try:
            return future.result(BRIDGE_TIMEOUT)
        except TimeoutError:
            future.cancel()
            where = url.split("?")[0]
            raise RetriableError(f"{method} {where} took over {BRIDGE_TIMEOUT:.0f} s") from None

    def hold_bearer(self, headers: Mapping[str, str]) -> None:
        """A fresh access token joins the client's secrets, so no error or log line shows it
        and the client keeps it to the origins it belongs to. Called for every bridged request;
        a connector that sends google-auth's headers itself calls it too."""
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = value.removeprefix("Bearer ").strip()
        add = getattr(self.http, "add_secrets", None)
        with self._lock:
            if not token or token in self._tokens_seen or add is None:
                return
            self._tokens_seen.add(token)
        add([token])

    def redact(self, text: str) -> str:
        return self.http.redact(text)
