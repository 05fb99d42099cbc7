"""Connect a data source with OAuth 2.0: the apps, the authorization request and the callback.

The authorization request leaves a row keyed by a hash of its `state`, bound to the browser
that asked, holding the PKCE verifier encrypted, valid for ten minutes. The callback deletes
that row before anything else happens, so a state works once whatever the outcome; then it
exchanges the code through the engine's HTTP layer (private-network guard, retries, redaction)
with Authlib, and only when every step succeeded writes the source's credentials. A refusal
raises :class:`OAuthRefused`, whose message is shown to the person and never holds a secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import secrets
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth.service import audit
from app.core import clock
from app.core.errors import InvalidInput, NotFound
from app.core.http import (
    HttpLayerError,
    KrsyncClient,
    OAuth2Settings,
    PrivateNetworkError,
    build_client,
    check_public_host,
)
from app.core.redact import Redactor, register_secrets
from app.core.secrets import SecretKeyError
from app.core.settings import get_settings
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource, OAuthApp, OAuthState
from app.sources.oauth_providers import (
    PROVIDERS,
    SALESFORCE_LOGIN,
    Provider,
    mailchimp_metadata_url,
)
from app.sync.source_health import CredentialsStored, record
from connectors.base import ForeignOriginError
from connectors.registry import UnknownConnectorError, get_connector

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from authlib.common.errors import AuthlibBaseError

log = logging.getLogger("krsync.oauth")

STATE_LIFETIME = timedelta(minutes=10)
#: RFC 6749 error codes are short ASCII words; anything else is not shown.
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
CALLBACK_PATH = "/oauth/callback"
EXCHANGE_TIMEOUT = 20.0


class OAuthRefused(Exception):
    """A step of the flow said no; ``message`` tells the person why and what to do."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


# --- apps -------------------------------------------------------------------------------------


def provider(key: str) -> Provider:
    found = PROVIDERS.get(key)
    if found is None:
        raise NotFound(f"no OAuth provider {key!r}; krsync knows {', '.join(sorted(PROVIDERS))}")
    return found


def get_app(session: Session, key: str) -> OAuthApp:
    provider(key)
    app = session.scalar(select(OAuthApp).where(OAuthApp.provider == key))
    if app is None:
        raise NotFound(f"no OAuth app is set for {key}: PUT /api/v1/oauth-apps/{key} first")
    return app


def put_app(session: Session, key: str, data: dict[str, Any], actor: str) -> OAuthApp:
    provider(key)
    secret = data.pop("client_secret")
    token = encrypt_credentials({"client_secret": secret})
    if token is None:  # an empty secret never gets here (the schema refuses it)
        raise InvalidInput("`client_secret` is required", field="client_secret")
    register_secrets([secret])
    app = session.scalar(select(OAuthApp).where(OAuthApp.provider == key))
    created = app is None
    if app is None:
        app = OAuthApp(provider=key)
        session.add(app)
    before = {f: getattr(app, f, None) for f in ("client_id", "authorize_url", "token_url")}
    app.client_id = data["client_id"]
    app.authorize_url = data.get("authorize_url")
    app.token_url = data.get("token_url")
    app.client_secret_encrypted = token
    session.flush()
    changes: dict[str, Any] = {
        f: [before[f], getattr(app, f)] for f in before if before[f] != getattr(app, f)
    }
    changes["provider"] = key
    changes["client_secret"] = "changed"
    audit(session, actor, "create" if created else "update", "oauth_app", app.id, changes)
    return app


def delete_app(session: Session, key: str, actor: str) -> None:
    app = get_app(session, key)
    session.execute(delete(OAuthApp).where(OAuthApp.id == app.id))
    audit(session, actor, "delete", "oauth_app", app.id, {"provider": key})


def stored_client_secret(app: OAuthApp) -> str:
    try:
        secret = decrypt_credentials(app.client_secret_encrypted).get("client_secret")
    except SecretKeyError as exc:
        raise OAuthRefused(f"The {app.provider} OAuth app can't be read: {exc}.", 409) from None
    if not isinstance(secret, str) or not secret:
        raise OAuthRefused(f"The {app.provider} OAuth app has no client secret; set it again.", 409)
    register_secrets([secret])
    return secret


# --- endpoints --------------------------------------------------------------------------------


def _endpoints(p: Provider, app: OAuthApp, source: DataSource) -> tuple[str, str]:
    """The app's own endpoints, else the platform's; Salesforce's follow the source's login
    host (a sandbox logs in at test.salesforce.com), as its refreshes do."""
    authorize, token = p.authorize_url, p.token_url
    if p.key == "salesforce":
        login = str((source.config or {}).get("login_url") or SALESFORCE_LOGIN).rstrip("/")
        authorize = f"{login}/services/oauth2/authorize"
        token = f"{login}/services/oauth2/token"
    return app.authorize_url or authorize, app.token_url or token


def redirect_uri() -> str:
    public = get_settings().public_url
    if not public or not public.strip():
        raise OAuthRefused(
            "KRSYNC_PUBLIC_URL is not set: set it to the address browsers reach krsync at "
            "(e.g. https://krsync.example.com) and register "
            "<KRSYNC_PUBLIC_URL>/oauth/callback as the redirect URI with the platform.",
            409,
        )
    return public.strip().rstrip("/") + CALLBACK_PATH


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def _challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _guard(url: str, what: str) -> None:
    """An app's own endpoint passes the private-network guard, as a connector's base_url does."""
    if get_settings().allow_private_networks:
        return
    try:
        asyncio.run(check_public_host(httpx.URL(url)))
    except (PrivateNetworkError, httpx.HTTPError) as exc:
        raise OAuthRefused(f"The OAuth app's {what} is refused: {exc}", 422) from None


def _source_for(session: Session, p: Provider, source_id: int) -> DataSource:
    source = session.get(DataSource, source_id)
    if source is None:
        raise OAuthRefused(f"There is no data source {source_id}.", 404)
    if source.connector not in p.connectors:
        raise OAuthRefused(
            f"Data source {source_id} uses the {source.connector} connector, which "
            f"{p.name} does not authorize (it connects {', '.join(p.connectors)}).",
            422,
        )
    return source


def start(session: Session, key: str, source_id: int, binding: str | None, actor: str) -> str:
    """The platform's authorization URL for this source, with a fresh state stored."""
    p = PROVIDERS.get(key)
    if p is None:
        raise OAuthRefused(f"krsync has no OAuth provider {key!r}.", 404)
    if binding is None:
        raise OAuthRefused(
            "Open this link in the browser you signed in to krsync with: the answer from the "
            "platform must come back to the same browser.",
            409,
        )
    source = _source_for(session, p, source_id)
    app = session.scalar(select(OAuthApp).where(OAuthApp.provider == key))
    if app is None:
        raise OAuthRefused(
            f"No {p.name} OAuth app is set: an admin registers one with "
            f"PUT /api/v1/oauth-apps/{key} (client id and secret from {p.name}).",
            409,
        )
    callback = redirect_uri()
    authorize_url, _ = _endpoints(p, app, source)
    if app.authorize_url:
        _guard(authorize_url, "authorize_url")
    state = secrets.token_urlsafe(32)
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": callback,
        "state": state,
    }
    scopes = p.scopes[source.connector]
    if scopes:
        params["scope"] = p.scope_separator.join(scopes)
    if p.optional_scopes:
        params["optional_scope"] = " ".join(p.optional_scopes)
    verifier_token = None
    if p.pkce:
        verifier = secrets.token_urlsafe(64)
        params["code_challenge"] = _challenge(verifier)
        params["code_challenge_method"] = "S256"
        try:
            verifier_token = encrypt_credentials({"code_verifier": verifier})
        except InvalidInput as exc:
            raise OAuthRefused(exc.message, 422) from None
    params.update(p.extra_params)
    now = clock.utcnow()
    session.execute(delete(OAuthState).where(OAuthState.expires_at < now))
    session.add(
        OAuthState(
            state_hash=_hash(state),
            provider=key,
            data_source_id=source.id,
            verifier_encrypted=verifier_token,
            binding=binding,
            actor=actor,
            expires_at=now + STATE_LIFETIME,
            created_at=now,
        )
    )
    session.flush()
    joiner = "&" if "?" in authorize_url else "?"
    return authorize_url + joiner + urlencode(params, quote_via=quote)


# --- callback ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connected:
    source_id: int
    source_name: str
    provider: str


def _consume(session: Session, state: str, binding: str | None) -> OAuthState:
    """The stored state, deleted: single use whatever happens next.

    A state bound to another browser is left alone (its own browser may still come back with
    it); the delete's row count makes two callbacks racing with one state fail but one.
    """
    row = session.get(OAuthState, _hash(state))
    if row is None:
        raise OAuthRefused(
            "This authorization is unknown or was already used. Start again from the source's "
            "Connect button."
        )
    if binding is None or not secrets.compare_digest(row.binding, binding):
        raise OAuthRefused(
            "This authorization was started in another browser or by another sign-in; start "
            "again from the source's Connect button here."
        )
    taken = session.execute(delete(OAuthState).where(OAuthState.state_hash == row.state_hash))
    if getattr(taken, "rowcount", 1) != 1:
        raise OAuthRefused("This authorization was already used. Start again.")
    session.expunge(row)
    if row.expires_at <= clock.utcnow():
        raise OAuthRefused(
            "This authorization expired (they last 10 minutes). Start again from the source's "
            "Connect button."
        )
    return row


def complete(
    session: Session,
    query: dict[str, str],
    binding: str | None,
    actor: str,
) -> Connected:
    """Check the state, exchange the code, store the tokens; or raise OAuthRefused."""
    state = query.get("state", "")
    if not state or len(state) > 512:
        raise OAuthRefused("The platform's answer carries no state: start again.")
    row = _consume(session, state, binding)
    p = PROVIDERS[row.provider]
    error = query.get("error")
    if error:
        if error == "access_denied":
            why = "consent was denied on the platform's page"
        elif _ERROR_CODE.fullmatch(error):
            why = f"the platform answered `{error}`"
        else:
            why = "the platform answered with an error"
        raise OAuthRefused(f"{p.name} did not connect: {why}. Nothing was changed.")
    code = query.get("code", "")
    if not code or len(code) > 4096:
        raise OAuthRefused(f"{p.name}'s answer carries no authorization code. Nothing changed.")
    source = session.get(DataSource, row.data_source_id)
    if source is None:
        raise OAuthRefused("The data source was deleted meanwhile. Nothing was changed.", 404)
    app = session.scalar(select(OAuthApp).where(OAuthApp.provider == p.key))
    if app is None:
        raise OAuthRefused(f"The {p.name} OAuth app was deleted meanwhile. Nothing changed.", 409)
    secret = stored_client_secret(app)
    verifier = None
    if row.verifier_encrypted:
        try:
            verifier = decrypt_credentials(row.verifier_encrypted).get("code_verifier")
        except SecretKeyError as exc:
            raise OAuthRefused(f"The authorization can't be read: {exc}. Start again.") from None
    _, token_url = _endpoints(p, app, source)
    callback = redirect_uri()
    grant = _Grant(p, app.client_id, secret, token_url, callback, code, verifier)
    try:
        token = asyncio.run(grant.run())
    except _ExchangeFailed as exc:
        raise OAuthRefused(
            f"{p.name} did not give a token: {exc.message}. Nothing was changed; start again."
        ) from None
    credentials = _credentials(source.connector, app.client_id, secret, token, token_url)
    cls = get_connector(source.connector)
    redactor = Redactor([secret, *(str(v) for v in token.values() if isinstance(v, str))])
    try:
        cls.credentials_model.model_validate(credentials)
    except ValidationError as exc:
        problems = "; ".join(
            redactor.redact(f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        raise OAuthRefused(
            f"{p.name}'s token answer lacks what the {source.connector} connector needs "
            f"({problems}). Nothing was changed."
        ) from None
    encrypted = encrypt_credentials(credentials)
    register_secrets(redactor.secrets)
    source.credentials_encrypted = encrypted
    change = record(
        source,
        CredentialsStored({**credentials, **_refresh_token_end(token)}),
        now=clock.utcnow(),
    )
    from app.notify.evaluate import source_health_changed

    source_health_changed(session, source, change)
    changes: dict[str, Any] = {"credentials": "changed", "oauth": p.key}
    instance = token.get("instance_url")
    if "salesforce_instance" in p.extras and isinstance(instance, str) and instance:
        before = (source.config or {}).get("instance_url")
        if before != instance:
            source.config = {**(source.config or {}), "instance_url": instance}
            changes["config.instance_url"] = [before, instance]
    dc = token.get("dc")
    if "mailchimp_dc" in p.extras and isinstance(dc, str):
        before = (source.config or {}).get("data_center")
        if before != dc:
            source.config = {**(source.config or {}), "data_center": dc}
            changes["config.data_center"] = [before, dc]
    session.flush()
    audit(session, actor, "update", "data_source", source.id, changes)
    log.info("data source %s connected with %s OAuth", source.id, p.key)
    return Connected(source.id, source.name, p.key)


def _refresh_token_end(token: dict[str, Any]) -> dict[str, Any]:
    """When the refresh token dies, where the token answer says (LinkedIn's live a year),
    whether or not the connector's credentials keep it: the source's health warns before."""
    refresh_in = token.get("refresh_token_expires_in")
    if isinstance(refresh_in, int | float) and not isinstance(refresh_in, bool) and refresh_in > 0:
        return {"refresh_token_expires_at": time.time() + float(refresh_in)}
    return {}


def _credentials(
    connector: str, client_id: str, secret: str, token: dict[str, Any], token_url: str
) -> dict[str, Any]:
    """What the connector's credentials model holds, from the app and the token answer."""
    now = time.time()
    refresh_in = token.get("refresh_token_expires_in")
    candidate: dict[str, Any] = {
        "client_id": client_id,
        "client_secret": secret,
        "access_token": token.get("access_token"),
        "refresh_token": token.get("refresh_token"),
        "expires_at": token.get("expires_at"),
        "refresh_token_expires_at": now + float(refresh_in)
        if isinstance(refresh_in, int | float)
        else None,
        "instance_url": token.get("instance_url"),
        "data_center": token.get("dc"),
        "token_uri": token_url,
    }
    try:
        fields = get_connector(connector).credentials_model.model_fields
    except UnknownConnectorError:
        fields = {}
    if connector in ("ga4", "search_console"):
        # Google's client refreshes with its own access token; a stored one would only go stale.
        candidate.pop("access_token")
        candidate.pop("expires_at")
    return {k: v for k, v in candidate.items() if k in fields and v is not None}


class _ExchangeFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _why(exc: Exception) -> str:
    """What went wrong, in krsync's words and the platform's error code, never its free text:
    a platform's `error_description` may quote anything it was sent or holds."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from the token endpoint"
    if isinstance(exc, AuthlibBaseError):
        code = str(getattr(exc, "error", "") or "")
        return (
            f"the token endpoint answered `{code}`"
            if _ERROR_CODE.fullmatch(code)
            else ("the token endpoint refused the exchange")
        )
    if isinstance(exc, HttpLayerError | PrivateNetworkError | ForeignOriginError):
        return str(exc)
    return f"the token endpoint's answer could not be read ({type(exc).__name__})"


@dataclass(frozen=True)
class _Grant:
    provider: Provider
    client_id: str
    client_secret: str
    token_url: str
    redirect_uri: str
    code: str
    verifier: str | None

    async def run(self) -> dict[str, Any]:
        secrets_known = [self.client_secret, self.code, *([self.verifier] if self.verifier else [])]
        settings = OAuth2Settings(
            token_endpoint=self.token_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            auth_method=self.provider.client_auth,
        )
        async with build_client(
            source_name=f"{self.provider.name} authorization",
            secrets=secrets_known,
            timeout=EXCHANGE_TIMEOUT,
            allow_private=get_settings().allow_private_networks,
            oauth=settings,
        ) as client:
            try:
                return await self._exchange(client)
            except _ExchangeFailed:
                raise
            except (
                AuthlibBaseError,
                HttpLayerError,
                PrivateNetworkError,
                ForeignOriginError,
                httpx.HTTPError,
                ValueError,
                KeyError,
            ) as exc:
                raise _ExchangeFailed(client.redactor.redact(_why(exc))) from None

    async def _exchange(self, client: KrsyncClient) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"code": self.code, "redirect_uri": self.redirect_uri}
        if self.verifier:
            kwargs["code_verifier"] = self.verifier
        raw = await client.fetch_token(  # type: ignore[attr-defined]
            self.token_url, grant_type="authorization_code", **kwargs
        )
        token = dict(raw)
        client.add_secrets([str(v) for k, v in token.items() if "token" in k and v])
        if not token.get("access_token"):
            raise _ExchangeFailed("the token answer has no access_token")
        extras = self.provider.extras
        if "meta_long_lived" in extras:
            token = await self._long_lived(client, token)
        if "mailchimp_dc" in extras:
            token["dc"] = await self._mailchimp_dc(client, str(token["access_token"]))
        return token

    async def _long_lived(self, client: KrsyncClient, token: dict[str, Any]) -> dict[str, Any]:
        """Meta's login gives a token good for hours; the sync needs the 60-day one."""
        response = await client.request(  # type: ignore[call-arg]
            "GET",
            self.token_url,
            params={
                "grant_type": "fb_exchange_token",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "fb_exchange_token": token["access_token"],
            },
            withhold_token=True,
        )
        if response.status_code != 200:
            raise _ExchangeFailed(f"the long-lived token exchange answered {response.status_code}")
        body = response.json()
        if not isinstance(body, dict) or not body.get("access_token"):
            raise _ExchangeFailed("the long-lived token exchange gave no access_token")
        client.add_secrets([str(body["access_token"])])
        longer = {**token, **body}
        if isinstance(body.get("expires_in"), int | float):
            longer["expires_at"] = int(time.time() + float(body["expires_in"]))
        return longer

    async def _mailchimp_dc(self, client: KrsyncClient, access_token: str) -> str:
        """Mailchimp's API host depends on the account: its metadata endpoint says which."""
        response = await client.request(  # type: ignore[call-arg]
            "GET",
            mailchimp_metadata_url(self.token_url),
            headers={"Authorization": f"OAuth {access_token}"},
            withhold_token=True,
        )
        if response.status_code != 200:
            raise _ExchangeFailed(f"Mailchimp's metadata endpoint answered {response.status_code}")
        body = response.json()
        dc = body.get("dc") if isinstance(body, dict) else None
        if not isinstance(dc, str) or not dc.isalnum():
            raise _ExchangeFailed("Mailchimp's metadata gave no data centre (`dc`)")
        return dc
