"""The official ``google-analytics-data`` client with its HTTP carried over the engine's client,
and its exceptions turned into krsync's errors. A mixin of :class:`GA4Connector`, so the
connector module keeps to its declarations and hooks."""

from __future__ import annotations

from typing import Any

import google.auth.exceptions
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta import types as ga
from google.analytics.data_v1beta.services.beta_analytics_data.transports.base import (
    DEFAULT_CLIENT_INFO,
)
from google.analytics.data_v1beta.services.beta_analytics_data.transports.rest import (
    BetaAnalyticsDataRestTransport,
)
from google.api_core import exceptions as gexc
from google.auth.transport.requests import AuthorizedSession

from connectors.base import (
    excerpt,
)
from connectors.errors import Refusal
from connectors.ga4.errors import _ERRORS, _retry_after
from connectors.ga4.models import GA4_ROOT, SCOPE, GA4Config
from connectors.google_auth import (
    GoogleBridge,
    GoogleCredentials,
    build_credentials,
    google_error,
    refresh_error,
)


class GA4Client:
    """The property a connector reads, the official client it reads it with, and its errors."""

    config: GA4Config
    credentials: GoogleCredentials
    _bridge: GoogleBridge
    _client: BetaAnalyticsDataClient | None
    _metadata: ga.Metadata | None

    @property
    def _pid(self) -> str:
        return self.config.property_id

    @property
    def _property(self) -> str:
        return f"properties/{self._pid}"

    # --- the client and its errors ---------------------------------------------------------------

    def _ga(self) -> BetaAnalyticsDataClient:
        if self._client is None:
            self._client = self._build_client()
        return self._client

    def _build_client(self) -> BetaAnalyticsDataClient:
        """The official REST transport, its session's HTTP carried over the engine's client."""
        credentials = build_credentials(self.credentials, SCOPE)
        transport = BetaAnalyticsDataRestTransport(
            host=self.config.base_url or GA4_ROOT,
            credentials=credentials,
            # Exchange the signed JWT at the key's `token_uri` (SPEC: it is honoured) rather
            # than sending it as a self-signed bearer.
            always_use_jwt_access=False,
        )
        session = AuthorizedSession(  # type: ignore[no-untyped-call]
            credentials, auth_request=self._bridge.auth_request()
        )
        for prefix in ("http://", "https://"):
            session.mount(prefix, self._bridge.adapter())
        if not isinstance(getattr(transport, "_session", None), AuthorizedSession):
            raise RuntimeError("google-analytics-data changed its REST transport; update krsync")
        # The generated transport keys its wrapped methods by stubs that hold the session, so
        # they are prepared again once the bridged session is in place.
        transport._session = session
        transport._prep_wrapped_messages(DEFAULT_CLIENT_INFO)  # type: ignore[no-untyped-call]
        return BetaAnalyticsDataClient(transport=transport)

    async def _property_metadata(self) -> ga.Metadata:
        if self._metadata is None:
            request = ga.GetMetadataRequest(name=f"{self._property}/metadata")
            self._metadata = await self._call(self._ga().get_metadata, request=request)
        return self._metadata

    async def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return await self._bridge.run(method, **kwargs)
        except google.auth.exceptions.RefreshError as exc:
            raise refresh_error(exc, self.credentials, self._bridge.redact) from None
        except gexc.GoogleAPICallError as exc:
            raise self._error(exc) from None

    def _error(self, exc: gexc.GoogleAPICallError) -> Exception:
        """The official client's exception, classified as an HTTP answer would be: it carries
        the status and, where it kept it, the response with Google's envelope."""
        status, text = "", str(exc.message or "")
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                status, text = google_error(response.json())
            except ValueError:
                pass
        said = excerpt(text, self._bridge.redact)
        disabled = "SERVICE_DISABLED" in str(exc.reason or "") or "disabled" in said.lower()
        refusal = Refusal(
            status=exc.code or 0,
            said=said or status or f"HTTP {exc.code}",
            codes=tuple(c for c in (status, "SERVICE_DISABLED" if disabled else "") if c),
            retry_after=_retry_after(exc),
            mask=self._bridge.redact,
            fields={"pid": self._pid},
        )
        return _ERRORS.classify(refusal)
