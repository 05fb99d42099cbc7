"""One attempt to hand one event to one channel: HTTP for Slack, Teams and webhooks, SMTP for mail.

An attempt says what happened in an :class:`Outcome` and never raises for a receiver's failure:
the dispatcher decides when to try again. Channel URLs are secrets (SPEC section 7), so no
message made here quotes one: errors name the kind of failure and the status, and everything
is passed through a redactor holding the channel's URL, its pieces and its signing secret,
which are registered with the logging filter as well (httpx logs request URLs).

The private-network guard of SPEC section 5 applies to every URL and to the SMTP host, checked
after DNS resolution, unless ``KRSYNC_ALLOW_PRIVATE_NETWORKS`` is true. Redirects are not
followed: a receiver that answers 3xx has not taken the event.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
import httpx
import stamina
from standardwebhooks import Webhook

from app.core.http import (
    USER_AGENT,
    PrivateNetworkError,
    PrivateNetworkGuard,
    resolve_host,
    ssl_context,
)
from app.core.redact import Redactor, register_secrets
from app.notify.render import describe, email_message, slack_payload, teams_payload
from connectors.netguard import non_public_reason

__all__ = ["Outcome", "Sender", "Target", "url_secrets"]

#: A receiver that takes longer than this to answer has failed this attempt.
HTTP_TIMEOUT = 15.0
SMTP_TIMEOUT = 30.0
#: How much of a refusal's body the delivery log keeps.
_BODY_EXCERPT = 200
#: Path segments this long are masked on their own (a Slack URL's secret is its last segment).
_SEGMENT_MIN = 12


@dataclass(frozen=True)
class Target:
    """A channel as one attempt needs it, its secrets decrypted."""

    channel_id: int
    name: str
    kind: str
    url: str | None = None
    signing_secret: str | None = None
    to: list[str] = field(default_factory=list)

    def secrets(self) -> list[str]:
        found = url_secrets(self.url) if self.url else []
        if self.signing_secret:
            found += [self.signing_secret, self.signing_secret.removeprefix("whsec_")]
        return found


@dataclass(frozen=True)
class Outcome:
    ok: bool
    response_status: int | None = None
    error: str | None = None
    duration_ms: int = 0


def url_secrets(url: str) -> list[str]:
    """The URL and the parts of it that carry its secret, in the forms a message may quote."""
    parts = urlsplit(url)
    found = [url, parts.path, parts.query, f"{parts.path}?{parts.query}"]
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= 8]
    found += [segment for segment in parts.path.split("/") if len(segment) >= _SEGMENT_MIN]
    found += [unquote(segment) for segment in parts.path.split("/") if len(segment) >= _SEGMENT_MIN]
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    return [value for value in found if value]


class _Transient(Exception):
    """A connection that never opened: nothing was sent, so trying again at once is harmless."""


class Sender:
    """Sends attempts over one pooled HTTP client; use it as ``async with``."""

    def __init__(
        self,
        *,
        public_url: str | None,
        smtp_url: str | None,
        mail_from: str | None,
        allow_private: bool,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._public_url = public_url
        self._smtp_url = smtp_url
        self._mail_from = mail_from
        self._allow_private = allow_private
        self._transport = transport
        # One small client per channel: a channel's requests go one at a time (they are ordered),
        # and httpcore's pool spends time per request on every connection it holds, so twenty
        # channels sharing one pool of twenty cost more CPU than the requests themselves.
        self._clients: dict[int, httpx.AsyncClient] = {}
        if smtp_url:
            register_secrets(url_secrets(smtp_url))

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def _client(self, channel_id: int) -> httpx.AsyncClient:
        client = self._clients.get(channel_id)
        if client is None:
            inner = self._transport or httpx.AsyncHTTPTransport(
                verify=ssl_context(),
                retries=0,
                limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
            )
            stack = inner if self._allow_private else PrivateNetworkGuard(inner)
            client = self._clients[channel_id] = httpx.AsyncClient(
                transport=stack,
                timeout=httpx.Timeout(HTTP_TIMEOUT),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            )
        return client

    async def send(self, target: Target, message_id: str, body: str, at: datetime) -> Outcome:
        """One attempt; ``body`` is the event JSON, ``at`` the webhook-timestamp."""
        secrets = target.secrets()
        register_secrets(secrets)
        redactor = Redactor(secrets)
        started = time.monotonic()
        try:
            if target.kind == "email":
                outcome = await self._mail(target, body)
            else:
                outcome = await self._post(target, message_id, body, at, redactor)
        except PrivateNetworkError as exc:
            outcome = Outcome(False, error=redactor.redact(str(exc)))
        elapsed = int((time.monotonic() - started) * 1000)
        error = redactor.redact(outcome.error) if outcome.error else None
        return Outcome(outcome.ok, outcome.response_status, error, elapsed)

    # --- HTTP ------------------------------------------------------------------------------

    def _request(
        self, target: Target, message_id: str, body: str, at: datetime
    ) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json"}
        if target.kind == "webhook":
            content = body.encode("utf-8")
            signature = Webhook(target.signing_secret or "").sign(message_id, at, content)
            headers |= {
                "webhook-id": message_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": signature,
            }
            return content, headers
        message = describe(json.loads(body), self._public_url)
        payload = slack_payload(message) if target.kind == "slack" else teams_payload(message)
        return json.dumps(payload, ensure_ascii=False).encode("utf-8"), headers

    async def _post(
        self, target: Target, message_id: str, body: str, at: datetime, redactor: Redactor
    ) -> Outcome:
        if not target.url:
            return Outcome(False, error="the channel has no URL")
        if target.kind == "webhook" and not target.signing_secret:
            return Outcome(False, error="the webhook channel has no signing secret")
        content, headers = self._request(target, message_id, body, at)
        try:
            response = await self._post_once_more_if_unopened(
                self._client(target.channel_id), target.url, content, headers
            )
        except httpx.TimeoutException as exc:
            return Outcome(
                False, error=f"no answer within {HTTP_TIMEOUT:.0f} s ({type(exc).__name__})"
            )
        except (httpx.HTTPError, _Transient) as exc:
            cause = exc.__cause__ if isinstance(exc, _Transient) else exc
            detail = str(cause) or "no detail"
            return Outcome(
                False, error=f"could not reach the receiver: {type(cause).__name__}: {detail}"
            )
        if response.is_success:
            return Outcome(True, response.status_code)
        excerpt = " ".join(response.text[:_BODY_EXCERPT].split())
        error = f"the receiver answered {response.status_code} {response.reason_phrase}"
        return Outcome(False, response.status_code, f"{error}: {excerpt}" if excerpt else error)

    async def _post_once_more_if_unopened(
        self, client: httpx.AsyncClient, url: str, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        """A refused or timed-out connect sent nothing: one quick second try inside the attempt
        (stamina) rides out a receiver's restart without waiting for the next scheduled one."""
        async for attempt in stamina.retry_context(
            on=_Transient, attempts=2, wait_initial=0.2, wait_max=0.5, wait_jitter=0.1, timeout=None
        ):
            with attempt:
                try:
                    response = await client.post(url, content=content, headers=headers)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    raise _Transient() from exc
                await response.aread()
                return response
        raise AssertionError("unreachable: stamina returns or re-raises")

    # --- SMTP ------------------------------------------------------------------------------

    async def _mail(self, target: Target, body: str) -> Outcome:
        if not self._smtp_url:
            return Outcome(False, error="KRSYNC_SMTP_URL is not set: krsync has no mail server")
        if not self._mail_from:
            return Outcome(False, error="KRSYNC_MAIL_FROM is not set: krsync has no sender address")
        if not target.to:
            return Outcome(False, error="the channel has no addresses")
        parts = urlsplit(self._smtp_url)
        tls = parts.scheme == "smtps"
        host = parts.hostname or ""
        port = parts.port or (465 if tls else 587)
        if not self._allow_private:
            await _check_public(host, port)
        mail = email_message(
            describe(json.loads(body), self._public_url), sender=self._mail_from, to=target.to
        )
        try:
            await aiosmtplib.send(
                mail,
                hostname=host,
                port=port,
                username=unquote(parts.username) if parts.username else None,
                password=unquote(parts.password) if parts.password else None,
                use_tls=tls,
                start_tls=None if not tls else False,
                timeout=SMTP_TIMEOUT,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return Outcome(False, exc.code, f"the mail server answered {exc.code}: {exc.message}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(
                False, error=f"could not hand the mail over: {type(exc).__name__}: {exc}"
            )
        return Outcome(True, 250)


async def _check_public(host: str, port: int) -> None:
    try:
        addresses = await resolve_host(host, port)
    except (OSError, UnicodeError) as exc:
        raise PrivateNetworkError(f"could not resolve the mail server {host!r}: {exc}") from None
    for address in addresses:
        reason = non_public_reason(address)
        if reason is not None:
            raise PrivateNetworkError(
                f"refusing to connect to the mail server {host!r}: it resolves to {address}, "
                f"a {reason} address (set KRSYNC_ALLOW_PRIVATE_NETWORKS=true to allow it)"
            )
