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
    ConnectorAuthError,
    ConnectorConfigError,
    RateLimited,
    RetriableError,
    excerpt,
)
from connectors.ga4.errors import _BadRequest, _retry_after
from connectors.ga4.models import GA4_ROOT, SCOPE, GA4Config
from connectors.ga4.quota import HOURLY_QUOTA_WAIT, DailyQuotaExhausted
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
        status, text = "", str(exc.message or "")
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                status, text = google_error(response.json())
            except ValueError:
                pass
        text = excerpt(text, self._bridge.redact)
        code = exc.code or 0
        pid = self._pid
        if code == 401:
            return ConnectorAuthError(
                f"Google refused the access token for GA4 ({text}): check the source's "
                "credentials (`service_account_info`, or `client_id`/`client_secret`/"
                "`refresh_token`)"
            )
        if code == 403:
            if "SERVICE_DISABLED" in str(exc.reason or "") or "disabled" in text.lower():
                return ConnectorAuthError(
                    "the Google Analytics Data API is not enabled in the Google Cloud project of "
                    f"these credentials: enable it in the Cloud console ({text})"
                )
            return ConnectorAuthError(
                f"the credentials have no access to GA4 property {pid} ({text}): in GA4 Admin > "
                "Property access management, give the service account's `client_email` (or the "
                "authorizing user) at least the Viewer role"
            )
        if code == 404:
            return ConnectorConfigError(
                f"GA4 has no property {pid} ({text}): check `property_id` (Admin > Property "
                "details, the numeric ID)"
            )
        if code == 429:
            lowered = text.lower()
            if "per day" in lowered:
                return DailyQuotaExhausted(
                    f"GA4 property {pid} has used all its tokens for today ({text}): the run "
                    "fails; the tokens return tomorrow, fewer or lighter mappings use fewer"
                )
            if "per hour" in lowered:
                return RateLimited(
                    f"GA4 property {pid} has used its tokens for this hour ({text})",
                    HOURLY_QUOTA_WAIT,
                )
            return RateLimited(f"GA4 asks to slow down ({text or status})", _retry_after(exc))
        if code == 400:
            return _BadRequest(text or status or "invalid request")
        if code >= 500 or code in (408, 409):  # 409 ABORTED: Google says retry
            return RetriableError(f"GA4 is having trouble ({code} {text or status})")
        return ConnectorConfigError(f"GA4 refused the request ({code} {text or status})")
