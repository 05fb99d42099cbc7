"""Acme: a small HTTP connector that exists only for tests.

It speaks the tiny JSON API documented below (and served by :mod:`acme_fake`) the way a vendor
connector should: a declared config, credentials and metric catalogue; a cheap ``check()``; a
batched ``fetch()`` paged by the shared paginators; the engine's client for every call, its
``raise_for_status`` for every answer, and errors that say what to do. The fault-injection,
secrets and key-result tests run the real sync engine through it.

The Acme API (``config.base_url``, default ``https://api.acme.test``)::

    GET  /v1/me                     -> {"account": {"id": "...", "name": "...", "timezone": "UTC"}}
    GET  /v1/metrics/{metric}/daily?from=YYYY-MM-DD&to=YYYY-MM-DD[&cursor=...][&platform=a,b]
                                    -> {"data": [{"date": "YYYY-MM-DD", "value": 12}],
                                        "next_cursor": null | "..."}
    POST /oauth/token               (RFC 6749 section 6 refresh, client_secret_post)
                                    -> {"access_token", "refresh_token", "expires_in", "token_type"}

Every call takes ``Authorization: Bearer <api key or OAuth access token>``; a refused one answers
401 ``{"error": "invalid_token"}``, a busy API 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core import http as http_module
from app.core.http import HttpStatusError
from app.core.settings import get_settings
from connectors import registry
from connectors.base import (
    BaseUrl,
    CheckResult,
    Connector,
    ConnectorAuthError,
    ConnectorConfigError,
    DailyValue,
    FetchResult,
    FilterOp,
    HttpOptions,
    MetricQuery,
    MetricSpec,
    OAuthSpec,
    RateLimited,
    RetriableError,
    Window,
)
from connectors.paginate import CursorPaginator, Request, pages

if TYPE_CHECKING:
    import pytest

ACME_URL = "https://api.acme.test"
API_KEY_REFUSED = "the API key was refused: create a new key in Acme's settings"
OAUTH_REFUSED = "Acme refused the OAuth access token even after a refresh: reconnect Acme"
NOT_JSON = "Acme answered with something that isn't JSON"


class AcmeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: BaseUrl = Field(ACME_URL, description="The API root; a proxy or a local test server.")
    page_size: int = Field(100, ge=1, le=1000, description="Days per page Acme should send.")


class AcmeCredentials(BaseModel):
    """An API key, or an OAuth2 client with its refresh token (and optionally a live token)."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    expires_at: float | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> AcmeCredentials:
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if self.api_key is None and not all(oauth):
            raise ValueError("give `api_key`, or `client_id`, `client_secret` and `refresh_token`")
        return self

    @property
    def uses_oauth(self) -> bool:
        return self.api_key is None


_SEGMENT_OPS: frozenset[FilterOp] = frozenset({"eq", "in"})


def _metric(name: str, description: str, unit: str) -> MetricSpec:
    return MetricSpec(
        name=name,
        description=description,
        unit=unit,
        filters={"platform": _SEGMENT_OPS, "channel": _SEGMENT_OPS},
    )


class AcmeConnector(Connector[AcmeConfig, AcmeCredentials]):
    """Daily figures from Acme; one paginated call per metric query."""

    key = "acme"
    name = "Acme (test platform)"
    category = "generic"
    metrics = (
        _metric("signups", "Product sign-ups", "signups"),
        _metric("followers_gained", "Followers gained a day", "followers"),
        _metric("leads", "New leads", "leads"),
        _metric("customers", "New customers", "customers"),
        _metric("sessions", "Website sessions", "sessions"),
    )

    @classmethod
    def http_options(cls, config: AcmeConfig, credentials: AcmeCredentials) -> HttpOptions:
        base = config.base_url.rstrip("/")
        if not credentials.uses_oauth:
            return HttpOptions(
                base_url=base, headers={"Authorization": f"Bearer {credentials.api_key}"}
            )
        token: dict[str, Any] = {"refresh_token": credentials.refresh_token}
        if credentials.access_token:
            token["access_token"] = credentials.access_token
            token["token_type"] = "Bearer"
            if credentials.expires_at is not None:
                token["expires_at"] = credentials.expires_at
        return HttpOptions(
            base_url=base,
            oauth=OAuthSpec(
                token_endpoint=f"{base}/oauth/token",
                client_id=credentials.client_id or "",
                client_secret=credentials.client_secret or "",
                token=token,
            ),
        )

    async def check(self) -> CheckResult:
        body = await self._get_json("/v1/me", {})
        account = body.get("account") if isinstance(body, dict) else None
        if not isinstance(account, dict):
            raise RetriableError("Acme's /v1/me answered without an account")
        return CheckResult(
            f"Connected to Acme account {account.get('name', '?')}",
            timezone=account.get("timezone"),
            details={"account_id": account.get("id")},
        )

    async def fetch(self, queries: Sequence[MetricQuery], window: Window) -> FetchResult:
        result = FetchResult()
        for query in queries:
            params = {
                "from": window.start.isoformat(),
                "to": window.end.isoformat(),
                "page_size": str(self.config.page_size),
            }
            for flt in query.filters:
                params[flt.field] = ",".join(str(v) for v in flt.values)
            # A cursor that comes back twice means the API is going round in circles: that
            # ends the fetch with an error rather than with part of the window.
            paginator = CursorPaginator(cursor="$.next_cursor", param="cursor")
            request = Request("GET", f"/v1/metrics/{query.metric}/daily", params)
            async for body in pages(
                paginator, request, lambda r: self._get_json(r.url, r.params), what="Acme's"
            ):
                result.values += self._values(query, body, window)
            if paginator.warning:
                raise RetriableError(f"Acme's pagination did not end: {paginator.warning}")
        return result

    def _values(self, query: MetricQuery, body: Any, window: Window) -> list[DailyValue]:
        rows = body.get("data") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise RetriableError("Acme answered without a `data` list")
        values = []
        for row in rows:
            try:
                day = date.fromisoformat(row["date"])
                value = float(row["value"])
            except (KeyError, TypeError, ValueError) as exc:
                raise RetriableError(f"Acme sent a row it can't be read: {exc!r}") from None
            if day in window:  # a platform padding its answer must not write outside the window
                values.append(DailyValue(query.id, day, value))
        return values

    async def _get_json(self, path: str, params: dict[str, str]) -> Any:
        response = await self.http.get(path, params=params)
        try:
            self.http.raise_for_status(response)  # type: ignore[attr-defined]
        except HttpStatusError as exc:
            raise self._error(exc) from None
        try:
            return response.json()
        except ValueError:
            raise RetriableError(NOT_JSON) from None

    def _error(self, exc: HttpStatusError) -> Exception:
        if exc.status_code in (401, 403):
            return ConnectorAuthError(
                OAUTH_REFUSED if self.credentials.uses_oauth else API_KEY_REFUSED
            )
        if exc.status_code == 429:
            return RateLimited(f"Acme asks to slow down: {exc.message}", exc.retry_after)
        if exc.transient:
            return RetriableError(f"Acme is having trouble: {exc.message}")
        return ConnectorConfigError(f"Acme refused the request: {exc.message}")


def register_acme(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``get_connector("acme")`` find Acme for this test only.

    The registry caches what entry-point discovery (``registry._discover``) found in
    ``registry._cache``. Discovery itself is wrapped, so Acme survives ``clear_cache()`` and
    ``load_connectors(refresh=True)``; the cache is emptied for the test and monkeypatch puts
    the previous one (without Acme) back afterwards.
    """
    discover = registry._discover

    def with_acme() -> dict[str, registry.ConnectorClass]:
        return {**discover(), AcmeConnector.key: AcmeConnector}

    monkeypatch.setattr(registry, "_discover", with_acme)
    monkeypatch.setattr(registry, "_cache", None)


PUBLIC_IP = "93.184.216.34"


def configure_engine(monkeypatch: pytest.MonkeyPatch, *, allow_private: bool = False) -> str:
    """What a sync through Acme needs: Acme registered, a secret key, names that resolve.

    ``*.test`` names resolve to a public address without a network, so the private-network
    guard stays in the path of respx-mocked traffic; a local server on 127.0.0.1 needs
    ``allow_private``. Returns the Fernet key (a subprocess may need it). Call
    ``get_settings.cache_clear()`` once the test is over.
    """
    register_acme(monkeypatch)
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("KRSYNC_SECRET_KEY", key)
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true" if allow_private else "false")
    get_settings.cache_clear()
    real = http_module.resolve_host

    async def resolve(host: str, port: int) -> list[str]:
        return [PUBLIC_IP] if host.endswith(".test") else await real(host, port)

    monkeypatch.setattr(http_module, "resolve_host", resolve)
    return key
