"""A local authorization server on 127.0.0.1 that behaves as a platform documents its OAuth flow.

`GET /authorize` plays the consent page: it remembers what it was asked (client, redirect URI,
PKCE challenge) against a fresh code and sends the browser back to the redirect URI.
`POST /token` checks the exchange the way the platform does: client authentication in the
form body or HTTP Basic, the same redirect URI, the PKCE verifier against the challenge, and a
code that works once. `GET /token?grant_type=fb_exchange_token` is Meta's long-lived exchange,
`GET /metadata` Mailchimp's, and `GET /account-info/v3/details` HubSpot's account read.

For a whole journey the platform is HubSpot's CRM too, for the tokens it issued: the deals'
properties (`GET /crm/v3/properties/deals`, https://developers.hubspot.com/docs/api/crm/properties:
``{"results": [{"name", "label", "type", "fieldType"}]}``) and their search (`POST
/crm/v3/objects/deals/search`, https://developers.hubspot.com/docs/api/crm/search: a filter
group of ``propertyName``/``operator``/``value``/``highValue``/``values``, ``limit`` of at most
200 and ``after``; answered ``{"total", "results", "paging": {"next": {"after"}}}``, no
``paging`` on the last page; datetimes compared as epoch milliseconds).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

ClientAuth = Literal["client_secret_post", "client_secret_basic"]


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str | None


@dataclass
class Platform:
    client_id: str
    client_secret: str
    client_auth: ClientAuth = "client_secret_post"
    #: Extra fields of the token answer (Salesforce's instance_url...).
    token_extras: dict[str, Any] = field(default_factory=dict)
    #: Answer every token request with this status (a platform having a bad moment).
    fail_with: int | None = None
    #: Issue no refresh token (LinkedIn without approval, Meta).
    refresh: bool = True
    dc: str = "us21"
    url: str = ""
    grants: dict[str, Grant] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    long_lived: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    token_requests: int = 0
    #: HubSpot deals, each a dict of string properties (``createdate`` ISO 8601 in UTC).
    deals: list[dict[str, str]] = field(default_factory=list)
    searches: int = 0

    # --- what each endpoint does -----------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> str:
        code = "code-" + secrets.token_urlsafe(12)
        self.grants[code] = Grant(
            query["client_id"],
            query["redirect_uri"],
            query.get("code_challenge"),
            query.get("code_challenge_method"),
        )
        back = {"code": code, "state": query["state"]}
        return query["redirect_uri"] + "?" + urlencode(back)

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        if self.fail_with is not None:
            return self.fail_with, {"message": "internal error"}
        client = self._client(form, authorization)
        if client is None:
            return 401, {"error": "invalid_client", "error_description": "bad client auth"}
        code = form.get("code", "")
        grant = self.grants.get(code)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant", "error_description": "unknown code"}
        if code in self.used:
            return 400, {"error": "invalid_grant", "error_description": "code already used"}
        self.used.add(code)
        if grant.client_id != client or form.get("redirect_uri") != grant.redirect_uri:
            self.problems.append(f"redirect_uri {form.get('redirect_uri')} != {grant.redirect_uri}")
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        verifier = form.get("code_verifier")
        if grant.challenge is not None:
            digest = hashlib.sha256((verifier or "").encode()).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if grant.method != "S256" or expected != grant.challenge:
                self.problems.append("PKCE verifier does not match the challenge")
                return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}
        elif verifier is not None:
            self.problems.append("a code_verifier came without a challenge")
        access = "access-" + secrets.token_urlsafe(16)
        self.issued.append(access)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": 1800,
            **self.token_extras,
        }
        if self.refresh:
            answer["refresh_token"] = "refresh-" + secrets.token_urlsafe(16)
        return 200, answer

    def exchange_long_lived(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if (
            query.get("client_id") != self.client_id
            or query.get("client_secret") != self.client_secret
            or query.get("fb_exchange_token") not in self.issued
        ):
            return 400, {"error": {"message": "Invalid OAuth access token", "code": 190}}
        longer = "long-lived-" + secrets.token_urlsafe(16)
        self.long_lived.append(longer)
        return 200, {"access_token": longer, "token_type": "bearer", "expires_in": 5183944}

    def metadata(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "OAuth" or token not in self.issued:
            return 401, {"error": "invalid_token"}
        return 200, {"dc": self.dc, "api_endpoint": f"https://{self.dc}.api.mailchimp.com"}

    def account(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.issued:
            return 401, {"status": "error", "message": "Authentication credentials not found."}
        return 200, {"portalId": 62515, "timeZone": "Europe/Paris", "companyCurrency": "EUR"}

    def _bearer_ok(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and token in self.issued

    def deal_properties(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        if not self._bearer_ok(authorization):
            return 401, {"status": "error", "category": "INVALID_AUTHENTICATION"}
        names = sorted({name for deal in self.deals for name in deal} | {"createdate"})
        kinds = {"createdate": ("datetime", "date"), "amount": ("number", "number")}
        return 200, {
            "results": [
                {
                    "name": name,
                    "label": name.replace("_", " ").capitalize(),
                    "type": kinds.get(name, ("string", "text"))[0],
                    "fieldType": kinds.get(name, ("string", "text"))[1],
                }
                for name in names
            ]
        }

    def search_deals(self, body: Any, authorization: str | None) -> tuple[int, dict[str, Any]]:
        if not self._bearer_ok(authorization):
            return 401, {"status": "error", "category": "INVALID_AUTHENTICATION"}
        self.searches += 1
        groups = body.get("filterGroups") if isinstance(body, dict) else None
        limit = body.get("limit", 10) if isinstance(body, dict) else 10
        if not isinstance(groups, list) or not isinstance(limit, int) or not 0 < limit <= 200:
            return 400, {"status": "error", "category": "VALIDATION_ERROR"}
        found = [d for d in self.deals if any(_all_match(d, g["filters"]) for g in groups)]
        start = int(body.get("after") or 0)
        page = found[start : start + limit]
        answer: dict[str, Any] = {
            "total": len(found),
            "results": [
                {"id": str(start + i + 1), "properties": dict(deal), "archived": False}
                for i, deal in enumerate(page)
            ],
        }
        if start + limit < len(found):
            answer["paging"] = {"next": {"after": str(start + limit)}}
        return 200, answer

    def _client(self, form: dict[str, str], authorization: str | None) -> str | None:
        if self.client_auth == "client_secret_basic":
            scheme, _, blob = (authorization or "").partition(" ")
            if scheme != "Basic" or "client_secret" in form:
                self.problems.append("expected HTTP Basic client authentication only")
                return None
            client, _, secret = base64.b64decode(blob).decode().partition(":")
        else:
            if authorization:
                self.problems.append("expected the client in the form body, not a header")
                return None
            client, secret = form.get("client_id", ""), form.get("client_secret", "")
        ok = client == self.client_id and secret == self.client_secret
        return client if ok else None


def _as_number(name: str, text: str) -> float:
    if name == "createdate":
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        return moment.timestamp() * 1000
    return float(text)


def _all_match(deal: dict[str, str], filters: list[dict[str, Any]]) -> bool:
    """HubSpot's filter operators, as its search documents them (ANDed within a group)."""
    for flt in filters:
        name, op = flt["propertyName"], flt["operator"]
        have = deal.get(name)
        if op == "EQ":
            ok = have == str(flt["value"])
        elif op == "NEQ":
            ok = have != str(flt["value"])
        elif op in ("IN", "NOT_IN"):
            ok = (have in {str(v) for v in flt["values"]}) == (op == "IN")
        elif have is None:
            ok = False
        elif op == "BETWEEN":
            ok = float(flt["value"]) <= _as_number(name, have) <= float(flt["highValue"])
        else:
            value, number = float(flt["value"]), _as_number(name, have)
            compare = {"GT": number > value, "GTE": number >= value, "LT": number < value}
            ok = compare[op] if op in compare else op == "LTE" and number <= value
        if not ok:
            return False
    return True


def _handler(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            auth = self.headers.get("Authorization")
            if parts.path == "/authorize":
                self.send_response(302)
                self.send_header("Location", platform.authorize(query))
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts.path == "/token" and query.get("grant_type") == "fb_exchange_token":
                self._send(*platform.exchange_long_lived(query))
            elif parts.path == "/metadata":
                self._send(*platform.metadata(auth))
            elif parts.path == "/account-info/v3/details":
                self._send(*platform.account(auth))
            elif parts.path == "/crm/v3/properties/deals":
                self._send(*platform.deal_properties(auth))
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            path = urlsplit(self.path).path
            if path == "/token":
                self._send(*platform.token(form, self.headers.get("Authorization")))
            elif path == "/crm/v3/objects/deals/search":
                body = json.loads(raw or "null")
                self._send(*platform.search_deals(body, self.headers.get("Authorization")))
            else:
                self._send(404, {"error": "not found"})

    return Handler


@contextmanager
def running(platform: Platform) -> Iterator[Platform]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(platform))
    platform.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield platform
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
