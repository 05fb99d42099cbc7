"""A fake Google: token endpoint, GA4 Data API v1beta and Search Console, from documented shapes.

One :class:`FakeGoogle` answers every request through :meth:`FakeGoogle.handle`; two carriers
put it on the wire: :meth:`FakeGoogle.serve`, a real HTTP server on 127.0.0.1 (the official GA4
client is then exercised end to end over sockets), and :meth:`FakeGoogle.install`, respx routes
for the contract suite's ``*.test`` hosts.

What it checks, as Google would refuse it:

- the token endpoint (developers.google.com/identity/protocols/oauth2/service-account#httprest):
  a form POST with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` whose ``assertion``
  is an RS256 JWT signed by a known service account's private key (verified with its public
  key; ``iss`` = ``client_email``, ``aud`` = ``https://oauth2.googleapis.com/token``, a
  ``scope``, at most an hour long), or ``grant_type=refresh_token`` with a known OAuth client
  (developers.google.com/identity/protocols/oauth2/web-server#offline). Answers
  ``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``;
- GA4 (developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/
  batchRunReports, .../runReport, .../getMetadata): a Bearer token it issued with the
  ``analytics.readonly`` scope, ``$alt=json;enum-encoding=int`` (the REST client's numeric
  enums: ``matchType`` arrives as an integer), int64 fields (``limit``, ``offset``) as strings,
  1-5 requests a batch, at most 10 metrics a report, known metric and dimension names. It
  evaluates ``dimensionFilter`` (``filter``, ``andGroup``, ``orGroup``, ``notExpression``;
  ``stringFilter`` and ``inListFilter``) over its records and answers metric values as
  **strings**, ``rowCount`` over all rows, ``limit``/``offset`` pages, ``metadata.timeZone`` and,
  when asked, ``propertyQuota``;
- Search Console (developers.google.com/webmaster-tools/v1/searchanalytics/query and
  .../v1/sites/get): the ``webmasters.readonly`` scope, ``dimensions: ["date"]``,
  ``dataState: "final"``, ``rowLimit`` <= 25,000, ``startRow``, ``dimensionFilterGroups``;
  rows sorted by clicks (not by date), days without data omitted.

Failures are scripted with :meth:`FakeGoogle.fail`.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import respx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
GA4_SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
SC_SCOPE = "https://www.googleapis.com/auth/webmasters.readonly"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PROPERTY_ID = "123456789"
SITE_URL = "https://www.example.com/"

# GA4's enums as the REST client sends them (numeric): Filter.StringFilter.MatchType.
EXACT, BEGINS_WITH, ENDS_WITH, CONTAINS, FULL_REGEXP, PARTIAL_REGEXP = 1, 2, 3, 4, 5, 6
TYPE_INTEGER, TYPE_FLOAT = 1, 2

GA4_DIMENSIONS = (
    "date",
    "sessionDefaultChannelGroup",
    "sessionSource",
    "sessionMedium",
    "country",
    "deviceCategory",
    "customEvent:plan",
)
GA4_METRICS: dict[str, int] = {
    "sessions": TYPE_INTEGER,
    "engagedSessions": TYPE_INTEGER,
    "newUsers": TYPE_INTEGER,
    "activeUsers": TYPE_INTEGER,
    "totalUsers": TYPE_INTEGER,
    "keyEvents": TYPE_INTEGER,
    "screenPageViews": TYPE_INTEGER,
    "eventCount": TYPE_INTEGER,
    "transactions": TYPE_INTEGER,
    "totalRevenue": 9,  # TYPE_CURRENCY
    "purchaseRevenue": 9,
    "bounceRate": TYPE_FLOAT,
    "engagementRate": TYPE_FLOAT,
    "userEngagementDuration": 4,  # TYPE_SECONDS
    **{f"metric{i:02d}": TYPE_INTEGER for i in range(30)},  # for tests that need many
}
SCHEMA_HINT = (
    "For a list of valid dimensions and metrics, see "
    "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema "
)
SC_DIMENSIONS = ("query", "page", "country", "device", "searchAppearance")
SC_OPERATORS = (
    "equals",
    "notEquals",
    "contains",
    "notContains",
    "includingRegex",
    "excludingRegex",
)
SC_TYPES = ("web", "image", "video", "news", "discover", "googleNews")


# --- a test service account, its key made at test time ------------------------------------------


@functools.cache
def _rsa_key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account(
    token_uri: str,
    *,
    key_name: str = "good",
    email: str = "krsync-reader@krsync-test.iam.gserviceaccount.com",
) -> dict[str, str]:
    """A service account JSON key as Google issues it; ``key_name`` picks one of a few RSA keys."""
    pem = (
        _rsa_key(key_name)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return {
        "type": "service_account",
        "project_id": "krsync-test",
        "private_key_id": f"key-{key_name}-0001",
        "private_key": pem,
        "client_email": email,
        "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/krsync-reader",
        "universe_domain": "googleapis.com",
    }


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


# --- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """Some of a GA4 property's traffic on one day, for one combination of dimension values."""

    day: date
    dims: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class SearchRecord:
    """Search Console traffic of one day for one (query, page, country, device, appearance)."""

    day: date
    dims: dict[str, str]
    clicks: int
    impressions: int
    position: float  # the average position of these impressions


def year_of_traffic(year: int = 2026) -> list[Record]:
    """Email sessions = the day of the month; Organic Search ten times more, to be filtered out."""
    first = date(year, 1, 1)
    records = []
    for offset in range((date(year + 1, 1, 1) - first).days):
        day = first + timedelta(days=offset)
        records.append(Record(day, {"sessionDefaultChannelGroup": "Email"}, {"sessions": day.day}))
        records.append(
            Record(
                day, {"sessionDefaultChannelGroup": "Organic Search"}, {"sessions": 10 * day.day}
            )
        )
    return records


def year_of_search(year: int = 2026) -> list[SearchRecord]:
    """Mobile: clicks = day of the month, 10 impressions a click; desktop: twice the clicks."""
    first = date(year, 1, 1)
    records: list[SearchRecord] = []
    for offset in range((date(year + 1, 1, 1) - first).days):
        day = first + timedelta(days=offset)
        for device, clicks in (("MOBILE", day.day), ("DESKTOP", 2 * day.day)):
            dims = {"query": "krsync", "page": SITE_URL, "country": "fra", "device": device}
            records.append(SearchRecord(day, dims, clicks, 10 * clicks, 3.0))
    return records


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def endpoint(self) -> str:
        if self.path.endswith("/token"):
            return "token"
        for name in ("batchRunReports", "runReport", "metadata", "searchAnalytics/query"):
            if self.path.endswith(name):
                return name
        return "sites.get" if "/webmasters/v3/sites/" in self.path else self.path


Answer = tuple[int, dict[str, str], bytes]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
        (json.dumps(body).encode()),
    )


def google_error(code: int, status: str, message: str, **extra: Any) -> dict[str, Any]:
    """Google's error envelope (cloud.google.com/apis/design/errors#http_mapping)."""
    return {"error": {"code": code, "message": message, "status": status, **extra}}


UNAUTHENTICATED = google_error(
    401,
    "UNAUTHENTICATED",
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
)
GA4_NO_ACCESS = google_error(
    403,
    "PERMISSION_DENIED",
    "User does not have sufficient permissions for this property. To learn more about Property "
    "ID, see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.",
)
GA4_HOURLY = google_error(
    429,
    "RESOURCE_EXHAUSTED",
    "Exhausted property tokens per hour for a project per property. These quota tokens will "
    "return in under an hour. To learn more, see "
    "https://developers.google.com/analytics/devguides/reporting/data/v1/quotas",
)
GA4_DAILY = google_error(
    429,
    "RESOURCE_EXHAUSTED",
    "Exhausted property tokens per day. These quota tokens will return tomorrow. To learn more, "
    "see https://developers.google.com/analytics/devguides/reporting/data/v1/quotas",
)
GA4_CONCURRENT = google_error(
    429, "RESOURCE_EXHAUSTED", "Exhausted concurrent requests quota for this property."
)
INTERNAL = google_error(500, "INTERNAL", "Internal error encountered.")


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass
class FakeGoogle:
    """Google as documented; ``records`` are GA4 traffic, ``search`` Search Console traffic."""

    accounts: list[dict[str, str]] = field(default_factory=list)
    #: OAuth clients: (client_id, client_secret, refresh_token) -> scopes the token was granted.
    oauth_clients: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    property_id: str = PROPERTY_ID
    time_zone: str = "Europe/Paris"
    currency: str = "EUR"
    records: list[Record] = field(default_factory=list)
    site_url: str = SITE_URL
    #: ``sites.get``'s ``permissionLevel``: the Search Console API v1 definition spells its values
    #: SITE_OWNER, SITE_FULL_USER, SITE_RESTRICTED_USER, SITE_UNVERIFIED_USER (WmxSite in the
    #: searchconsole.v1 discovery document); the Webmasters v3 reference, siteFullUser...
    permission_level: str = "siteFullUser"
    search: list[SearchRecord] = field(default_factory=list)
    #: Property tokens: what a report consumes and what is left (None: no quota block at all).
    tokens_per_report: int = 3
    tokens_left_hour: int = 40_000
    tokens_left_day: int = 200_000
    sampled: tuple[int, int] | None = None
    thresholded: bool = False
    calls: list[Call] = field(default_factory=list)
    issued: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _scripts: dict[str, list[Scripted]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- scripting -------------------------------------------------------------------------------

    def fail(
        self,
        endpoint: str,
        status: int,
        body: Any,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` calls to ``endpoint`` (see :attr:`Call.endpoint`) answer this.

        ``$BEARER`` in the body becomes the access token the request carried.
        """
        self._scripts.setdefault(endpoint, []).append(Scripted(status, body, headers or {}, times))

    def revoke_tokens(self) -> None:
        """Every access token issued so far stops working (a key rotated, access removed)."""
        self.issued.clear()

    def of(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    # --- carriers --------------------------------------------------------------------------------

    @contextmanager
    def serving(self) -> Iterator[tuple[FakeGoogle, str]]:
        """Served, with the test service account registered at the server's token URL."""
        with self.serve() as base:
            self.accounts = [service_account(f"{base}/token")]
            yield self, base

    @contextmanager
    def serve(self) -> Iterator[str]:
        """A real HTTP server on 127.0.0.1; yields its base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: with Nagle on, the client's delayed ACK
            # holds every answer ~40 ms.
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = fake.handle(
                    self.command, self.path, dict(self.headers.items()), body
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    def install(self, router: respx.MockRouter, *hosts: str) -> None:
        """respx routes answering for ``hosts`` (the contract suite's public ``*.test`` names)."""

        def answer(request: httpx.Request) -> httpx.Response:
            target = request.url.raw_path.decode("ascii")
            status, headers, payload = self.handle(
                request.method, target, dict(request.headers.items()), request.content
            )
            return httpx.Response(status, headers=headers, content=payload)

        for host in hosts:
            router.route(host=host).mock(side_effect=answer)

    # --- dispatch --------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        lowered = {k.lower(): v for k, v in headers.items()}
        parsed: Any = body
        if "json" in lowered.get("content-type", ""):
            parsed = json.loads(body or b"null")
        elif "x-www-form-urlencoded" in lowered.get("content-type", ""):
            parsed = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        call = Call(method, parts.path, query, lowered, parsed)
        with self._lock:
            self.calls.append(call)
            script = self._scripts.get(call.endpoint)
            if script:
                scripted = script[0]
                scripted.times -= 1
                if scripted.times <= 0:
                    script.pop(0)
                answer = _json(scripted.status, scripted.body, scripted.headers)
                # An echo of the caller's own token, as careless platforms write in errors.
                bearer = lowered.get("authorization", "").removeprefix("Bearer ").encode()
                return answer[0], answer[1], answer[2].replace(b"$BEARER", bearer)
        if call.endpoint == "token" and method == "POST":
            return self._token(call)
        if parts.path.startswith("/v1beta/"):
            return self._ga4(call)
        if parts.path.startswith("/webmasters/v3/sites/"):
            return self._search_console(call)
        return _json(404, google_error(404, "NOT_FOUND", f"no such endpoint {parts.path}"))

    # --- the token endpoint ----------------------------------------------------------------------

    def _token(self, call: Call) -> Answer:
        form = call.body if isinstance(call.body, dict) else {}
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            scopes = self._verify_assertion(str(form.get("assertion", "")))
            if isinstance(scopes, str):
                return _json(400, {"error": "invalid_grant", "error_description": scopes})
        elif grant == "refresh_token":
            key = (
                form.get("client_id", ""),
                form.get("client_secret", ""),
                form.get("refresh_token", ""),
            )
            if not any(key[0] == k[0] and key[1] == k[1] for k in self.oauth_clients):
                return _json(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "The OAuth client was not found.",
                    },
                )
            if key not in self.oauth_clients:
                return _json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    },
                )
            scopes = self.oauth_clients[key]
        else:
            return _json(
                400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
            )
        token = f"ya29.fake-{len(self.issued) + 1}-{time.monotonic_ns()}"
        self.issued[token] = scopes
        return _json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _verify_assertion(self, assertion: str) -> tuple[str, ...] | str:
        """The JWT's scopes, or the reason Google gives for refusing it."""
        try:
            head_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url(head_b64))
            claims = json.loads(_b64url(claims_b64))
            signature = _b64url(signature_b64)
        except ValueError:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        if header.get("alg") != "RS256":
            return "Invalid JWT Signature."
        account = next((a for a in self.accounts if a["client_email"] == claims.get("iss")), None)
        if account is None:
            return "Invalid grant: account not found"
        public_key = serialization.load_pem_private_key(
            account["private_key"].encode(), password=None
        ).public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        try:
            public_key.verify(
                signature,
                f"{head_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return "Invalid JWT Signature."
        now = time.time()
        iat, exp = float(claims.get("iat", 0)), float(claims.get("exp", 0))
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE or not claims.get("scope"):
            return "Invalid JWT: aud and scope are required"
        if not (iat - 300 <= now <= exp) or exp - iat > 3600:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        return tuple(str(claims["scope"]).split())

    def _authorized(self, call: Call, scope: str) -> Answer | None:
        value = call.headers.get("authorization", "")
        token = value.removeprefix("Bearer ")
        if not value.startswith("Bearer ") or token not in self.issued:
            return _json(
                401,
                UNAUTHENTICATED,
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        granted = self.issued[token]
        broader = scope.removesuffix(".readonly")
        if scope not in granted and broader not in granted:
            return _json(
                403,
                google_error(
                    403,
                    "PERMISSION_DENIED",
                    "Request had insufficient authentication scopes.",
                    details=[
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                        }
                    ],
                ),
            )
        return None

    # --- GA4 -------------------------------------------------------------------------------------

    def _ga4(self, call: Call) -> Answer:
        refused = self._authorized(call, GA4_SCOPE)
        if refused is not None:
            return refused
        if call.query.get("$alt") != "json;enum-encoding=int":
            return _bad("the REST client asks `$alt=json;enum-encoding=int`")
        match = re.fullmatch(
            r"/v1beta/properties/(\d+)(:batchRunReports|:runReport|/metadata)", call.path
        )
        if match is None:
            return _json(404, google_error(404, "NOT_FOUND", "Method not found."))
        if match.group(1) != self.property_id:
            return _json(403, GA4_NO_ACCESS)
        what = match.group(2)
        if what == "/metadata":
            return _json(200, self._metadata())
        body = call.body if isinstance(call.body, dict) else {}
        if what == ":runReport":
            return self._report(body, single=True)
        requests = body.get("requests")
        if not isinstance(requests, list) or not 1 <= len(requests) <= 5:
            return _bad("A batch request must contain between 1 and 5 requests.")
        reports = []
        for request in requests:
            status, _, payload = self._report(request)
            if status != 200:
                return status, {"Content-Type": "application/json"}, payload
            reports.append(json.loads(payload))
        self._charge(reports)
        return _json(200, {"reports": reports, "kind": "analyticsData#batchRunReports"})

    def _metadata(self) -> dict[str, Any]:
        return {
            "name": f"properties/{self.property_id}/metadata",
            "dimensions": [{"apiName": d, "uiName": d, "category": "Test"} for d in GA4_DIMENSIONS],
            "metrics": [
                {"apiName": m, "uiName": m, "type": t, "category": "Test"}
                for m, t in GA4_METRICS.items()
            ]
            + [
                {
                    "apiName": "keyEvents",
                    "uiName": "Key events",
                    "deprecatedApiNames": ["conversions"],
                }
            ],
        }

    def _charge(self, reports: list[dict[str, Any]]) -> None:
        cost = self.tokens_per_report * len(reports)
        self.tokens_left_hour = max(0, self.tokens_left_hour - cost)
        self.tokens_left_day = max(0, self.tokens_left_day - cost)
        for report in reports:
            if "propertyQuota" in report:
                report["propertyQuota"] = {
                    "tokensPerDay": {"consumed": cost, "remaining": self.tokens_left_day},
                    "tokensPerHour": {"consumed": cost, "remaining": self.tokens_left_hour},
                    "concurrentRequests": {"remaining": 10},
                    "serverErrorsPerProjectPerHour": {"remaining": 10},
                    "potentiallyThresholdedRequestsPerHour": {"remaining": 120},
                    "tokensPerProjectPerHour": {
                        "consumed": cost,
                        "remaining": self.tokens_left_hour,
                    },
                }

    def _report(self, request: dict[str, Any], *, single: bool = False) -> Answer:
        ranges = request.get("dateRanges") or []
        if len(ranges) != 1:
            return _bad("krsync's fake expects exactly one date range")
        try:
            start, end = (_ga_date(ranges[0][k]) for k in ("startDate", "endDate"))
        except (KeyError, ValueError):
            return _bad("Invalid date range")
        dims = [d.get("name") for d in request.get("dimensions", [])]
        metrics = [m.get("name") for m in request.get("metrics", [])]
        if len(metrics) > 10:
            return _bad("Requests are limited to 10 metrics; this request has more.")
        for name in dims:
            if name not in GA4_DIMENSIONS:
                return _bad(f"Field {name} is not a valid dimension. {SCHEMA_HINT}")
        for name in metrics:
            if name not in GA4_METRICS:
                return _bad(f"Field {name} is not a valid metric. {SCHEMA_HINT}")
        for key in ("limit", "offset"):
            if key in request and not (isinstance(request[key], str) and request[key].isdigit()):
                return _bad(f"`{key}` is an int64: the JSON mapping sends it as a string")
        try:
            keep = _matcher(request.get("dimensionFilter"))
        except ValueError as exc:
            return _bad(str(exc))
        table: dict[tuple[str, ...], dict[str, float]] = {}
        for record in self.records:
            if not start <= record.day <= end:
                continue
            values = {"date": record.day.strftime("%Y%m%d"), **record.dims}
            if not keep(values):
                continue
            key = tuple(values.get(d, "(not set)") for d in dims)
            sums = table.setdefault(key, dict.fromkeys(metrics, 0.0))
            for name in metrics:
                sums[name] += record.metrics.get(name, 0.0)
        order = [
            o["dimension"]["dimensionName"] for o in request.get("orderBys", []) if "dimension" in o
        ]
        rows = sorted(
            table.items(), key=lambda kv: tuple(kv[0][dims.index(d)] for d in order if d in dims)
        )
        offset = int(request.get("offset", "0"))
        limit = int(request.get("limit", "10000"))
        page = rows[offset : offset + limit]
        report: dict[str, Any] = {
            "dimensionHeaders": [{"name": d} for d in dims],
            "metricHeaders": [{"name": m, "type": GA4_METRICS[m]} for m in metrics],
            "rowCount": len(rows),
            "metadata": {"currencyCode": self.currency, "timeZone": self.time_zone},
            "kind": "analyticsData#runReport",
        }
        if page:
            report["rows"] = [
                {
                    "dimensionValues": [{"value": v} for v in key],
                    "metricValues": [{"value": _ga_number(sums[m])} for m in metrics],
                }
                for key, sums in page
            ]
        if not rows:
            del report["rowCount"]  # proto3 JSON leaves a zero out
        if self.sampled is not None:
            read, space = self.sampled
            report["metadata"]["samplingMetadatas"] = [
                {"samplesReadCount": str(read), "samplingSpaceSize": str(space)}
            ]
        if self.thresholded:
            report["metadata"]["subjectToThresholding"] = True
        if request.get("returnPropertyQuota"):
            report["propertyQuota"] = {}
        if single:
            self._charge([report])
        return _json(200, report)

    # --- Search Console --------------------------------------------------------------------------

    def _search_console(self, call: Call) -> Answer:
        refused = self._authorized(call, SC_SCOPE)
        if refused is not None:
            return refused
        rest = call.path.removeprefix("/webmasters/v3/sites/")
        encoded, _, tail = rest.partition("/")
        site = unquote(encoded)
        if site != self.site_url:
            message = (
                f"User does not have sufficient permission for site '{site}'. See also: "
                "https://support.google.com/webmasters/answer/2451999."
            )
            return _json(
                403,
                {
                    "error": {
                        "code": 403,
                        "message": message,
                        "errors": [{"message": message, "domain": "global", "reason": "forbidden"}],
                    }
                },
            )
        if tail == "" and call.method == "GET":
            return _json(200, {"siteUrl": site, "permissionLevel": self.permission_level})
        if tail != "searchAnalytics/query" or call.method != "POST":
            return _json(404, google_error(404, "NOT_FOUND", "Not Found"))
        body = call.body if isinstance(call.body, dict) else {}
        try:
            start, end = date.fromisoformat(body["startDate"]), date.fromisoformat(body["endDate"])
        except (KeyError, ValueError):
            return _sc_bad("startDate and endDate are required, as YYYY-MM-DD")
        if body.get("dimensions") != ["date"]:
            return _sc_bad("krsync asks by date only")
        if body.get("dataState") != "final":
            return _sc_bad("krsync asks for final data only")
        if body.get("type", "web") not in SC_TYPES:
            return _sc_bad(f"Invalid value for type: {body.get('type')}")
        row_limit = body.get("rowLimit", 1000)
        if not isinstance(row_limit, int) or not 1 <= row_limit <= 25_000:
            return _sc_bad("rowLimit must be between 1 and 25000")
        start_row = body.get("startRow", 0)
        try:
            keep = _sc_matcher(body.get("dimensionFilterGroups", []))
        except ValueError as exc:
            return _sc_bad(str(exc))
        days: dict[date, list[float]] = {}
        for record in self.search:
            if start <= record.day <= end and keep(record.dims):
                sums = days.setdefault(record.day, [0.0, 0.0, 0.0])
                sums[0] += record.clicks
                sums[1] += record.impressions
                sums[2] += record.position * record.impressions
        rows = [
            {
                "keys": [day.isoformat()],
                "clicks": c,
                "impressions": i,
                "ctr": c / i if i else 0.0,
                "position": p / i if i else 0.0,
            }
            for day, (c, i, p) in days.items()
            if i
        ]
        # Sorted by clicks, as documented; ties broken against the date order on purpose.
        rows.sort(key=lambda r: str(r["keys"][0]), reverse=True)
        rows.sort(key=lambda r: -float(r["clicks"]))
        page = rows[start_row : start_row + row_limit]
        answer: dict[str, Any] = {"responseAggregationType": "byProperty"}
        if page:
            answer["rows"] = page
        return _json(200, answer)


def _bad(message: str) -> Answer:
    return _json(400, google_error(400, "INVALID_ARGUMENT", message))


def _sc_bad(message: str) -> Answer:
    return _json(
        400,
        {
            "error": {
                "code": 400,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": "invalidParameter"}],
            }
        },
    )


def _ga_date(value: str) -> date:
    today = date.today()  # noqa: DTZ011 - relative ranges of the check call only
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    if m := re.fullmatch(r"(\d+)daysAgo", value):
        return today - timedelta(days=int(m.group(1)))
    return date.fromisoformat(value)


def _ga_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


Matcher = Callable[[dict[str, str]], bool]


def _matcher(expression: dict[str, Any] | None) -> Matcher:
    """GA4's FilterExpression as a predicate over one row's dimension values."""
    if not expression:
        return lambda values: True
    if "andGroup" in expression:
        parts = [_matcher(e) for e in expression["andGroup"].get("expressions", [])]
        return lambda values: all(p(values) for p in parts)
    if "orGroup" in expression:
        parts = [_matcher(e) for e in expression["orGroup"].get("expressions", [])]
        return lambda values: any(p(values) for p in parts)
    if "notExpression" in expression:
        inner = _matcher(expression["notExpression"])
        return lambda values: not inner(values)
    flt = expression.get("filter")
    if not isinstance(flt, dict) or "fieldName" not in flt:
        raise ValueError("a filter needs a fieldName")
    name = flt["fieldName"]
    if name not in GA4_DIMENSIONS:
        raise ValueError(f"Field {name} is not a valid dimension.")
    if "stringFilter" in flt:
        sf = flt["stringFilter"]
        match_type = sf.get("matchType", EXACT)
        if not isinstance(match_type, int):
            raise ValueError("matchType must arrive as a number (enum-encoding=int)")
        wanted, sensitive = sf.get("value", ""), sf.get("caseSensitive", False)

        def string_match(values: dict[str, str]) -> bool:
            have = values.get(name, "(not set)")
            a, b = (have, wanted) if sensitive else (have.lower(), wanted.lower())
            if match_type == EXACT:
                return a == b
            if match_type == BEGINS_WITH:
                return a.startswith(b)
            if match_type == ENDS_WITH:
                return a.endswith(b)
            if match_type == CONTAINS:
                return b in a
            flags = 0 if sensitive else re.IGNORECASE
            if match_type == FULL_REGEXP:
                return re.fullmatch(wanted, have, flags) is not None
            return re.search(wanted, have, flags) is not None

        return string_match
    if "inListFilter" in flt:
        lf = flt["inListFilter"]
        sensitive = lf.get("caseSensitive", False)
        options = {v if sensitive else v.lower() for v in lf.get("values", [])}
        return lambda values: (
            (values.get(name, "(not set)") if sensitive else values.get(name, "(not set)").lower())
            in options
        )
    raise ValueError("krsync's fake knows stringFilter and inListFilter only")


def _sc_matcher(groups: list[dict[str, Any]]) -> Matcher:
    predicates: list[Matcher] = []
    for group in groups:
        if group.get("groupType", "and") != "and":
            raise ValueError("groupType must be `and`")
        for flt in group.get("filters", []):
            dimension, operator, expression = (
                flt.get("dimension"),
                flt.get("operator", "equals"),
                flt.get("expression"),
            )
            if dimension not in SC_DIMENSIONS:
                raise ValueError(f"Invalid value for dimension: {dimension}")
            if operator not in SC_OPERATORS or not isinstance(expression, str):
                raise ValueError(f"Invalid value for operator: {operator}")
            predicates.append(_sc_predicate(dimension, operator, expression))
    return lambda dims: all(p(dims) for p in predicates)


def _sc_predicate(dimension: str, operator: str, expression: str) -> Matcher:
    def test(dims: dict[str, str]) -> bool:
        have = dims.get(dimension, "")
        if dimension in ("country", "device"):
            have, wanted = have.lower(), expression.lower()
        else:
            wanted = expression
        if operator == "equals":
            return have == wanted
        if operator == "notEquals":
            return have != wanted
        if operator == "contains":
            return wanted in have
        if operator == "notContains":
            return wanted not in have
        found = re.search(expression, dims.get(dimension, "")) is not None
        return found if operator == "includingRegex" else not found

    return test
