"""A HubSpot-shaped CRM for bench/crm.py: a quarter's deals behind HubSpot's CRM v3 API.

    .venv/bin/python bench/hubspotapi.py [--port 0] [--latency-ms 50] [--deals 20000]
        [--won-share 0.08] [--quarter 2026-07-01] [--token T]

Two endpoints, in the shapes and with the limits HubSpot documents:

- ``POST /crm/v3/objects/deals/search`` (https://developers.hubspot.com/docs/api/crm/search):
  body ``filterGroups[{filters[{propertyName, operator, value | highValue | values}]}]``,
  ``properties``, ``limit`` (at most 200), ``after``; reply ``{"total", "results", "paging":
  {"next": {"after", "link"}}}``, no ``paging`` on the last page; paging past 10,000 results
  answers 400. At most 5 searches in one second per token (the search limit of
  https://developers.hubspot.com/changelog/crm-search-api-rate-limit-increase, raised since):
  one more is answered 429 ``SECONDLY``.
- ``GET /crm/v3/objects/deals?limit=&after=&properties=`` (the basic list of
  https://developers.hubspot.com/docs/api/crm/deals): ``limit`` at most 100 (default 10),
  ``after`` the next record's id; reply ``{"results", "paging": {"next": {"after", "link"}}}``.
  190 calls per rolling 10 seconds per token (Professional and Enterprise private apps,
  https://developers.hubspot.com/docs/api/usage-details), with ``X-HubSpot-RateLimit-Max``,
  ``-Remaining`` and ``-Interval-Milliseconds`` on every answer; one more is answered 429
  ``TEN_SECONDLY_ROLLING``.

Every call needs ``Authorization: Bearer <token>`` (401 ``INVALID_AUTHENTICATION`` otherwise) and
waits ``--latency-ms`` before it is answered. Property values are strings; datetimes are ISO
8601 in UTC with milliseconds; a filter's datetime value is epoch milliseconds.

The deals (:func:`make_deals`, deterministic): created evenly over the quarter; a ``--won-share``
of them closed won and a quarter closed lost, each on a day between its creation and the
quarter's end; the rest open, with an expected close date up to 90 days after creation.

Out of band, for the benchmark: ``GET /_stats`` (calls per endpoint, 429s) and ``POST /_reset``.
It imports nothing from krsync, and runs in its own process so it never competes with the
client under test for a GIL. On start it prints ``ready <port>``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEARCH_PAGE_MAX = 200
LIST_PAGE_MAX = 100
LIST_PAGE_DEFAULT = 10
RESULT_CAP = 10_000
SEARCHES_PER_SECOND = 5
CALLS_PER_TEN_SECONDS = 190
OPEN_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
)
SOURCES = ("PAID_SOCIAL", "ORGANIC_SEARCH", "EMAIL_MARKETING", "PAID_SEARCH", "DIRECT_TRAFFIC")
LOST_SHARE = 0.25


@dataclass(frozen=True)
class Deal:
    id: int
    properties: dict[str, str]
    #: Epoch milliseconds of the datetime properties, for filtering without parsing.
    instants: dict[str, int]


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def quarter_end(start: date) -> date:
    month = start.month + 3
    following = date(start.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
    return following - timedelta(days=1)


def make_deals(count: int, won_share: float, start: date, seed: int = 2026) -> list[Deal]:
    """``count`` deals created over the quarter from ``start``, ``won_share`` of them won."""
    rng = random.Random(seed)
    begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    end = datetime.combine(quarter_end(start) + timedelta(days=1), datetime.min.time(), UTC)
    span = (end - begin).total_seconds()
    stages = ["closedwon"] * round(count * won_share) + ["closedlost"] * round(count * LOST_SHARE)
    stages += [OPEN_STAGES[i % len(OPEN_STAGES)] for i in range(count - len(stages))]
    rng.shuffle(stages)
    deals = []
    for n, stage in enumerate(stages, start=1):
        created = begin + timedelta(seconds=rng.uniform(0, span - 1), microseconds=0)
        created = created.replace(microsecond=rng.randrange(1000) * 1000)
        if stage in ("closedwon", "closedlost"):
            closed = created + timedelta(
                seconds=rng.uniform(0, (end - created).total_seconds() - 1)
            )
        else:
            closed = created + timedelta(days=rng.uniform(14, 90))
        properties = {
            "dealname": f"Deal {n}",
            "dealstage": stage,
            "pipeline": "default",
            "amount": f"{rng.randrange(500, 50_000)}.{rng.randrange(100):02d}",
            "hs_analytics_source": SOURCES[rng.randrange(len(SOURCES))],
            "createdate": _iso(created),
            "closedate": _iso(closed),
            "hs_lastmodifieddate": _iso(max(created, closed if closed < end else created)),
            "hs_object_id": str(n),
        }
        deals.append(Deal(n, properties, {"createdate": _ms(created), "closedate": _ms(closed)}))
    return deals


def won_by_day(deals: list[Deal], start: date) -> dict[date, int]:
    """The figure both clients must find: deals won on each UTC day of the quarter."""
    last = quarter_end(start)
    out: dict[date, int] = {}
    for deal in deals:
        if deal.properties["dealstage"] != "closedwon":
            continue
        day = datetime.fromtimestamp(deal.instants["closedate"] / 1000, UTC).date()
        if start <= day <= last:
            out[day] = out.get(day, 0) + 1
    return out


# --- search --------------------------------------------------------------------------------------


class BadRequest(Exception):
    pass


def _number(deal: Deal, name: str) -> float | None:
    if name in deal.instants:
        return float(deal.instants[name])
    raw = deal.properties.get(name)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _matches(deal: Deal, flt: dict[str, Any]) -> bool:
    name, operator = flt.get("propertyName"), flt.get("operator")
    if not isinstance(name, str) or not isinstance(operator, str):
        raise BadRequest("each filter needs a propertyName and an operator")
    text = deal.properties.get(name)
    if operator == "EQ":
        return text == str(flt.get("value"))
    if operator == "NEQ":
        return text != str(flt.get("value"))
    if operator in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list):
            raise BadRequest(f"{operator} needs `values`")
        return (text in {str(v) for v in values}) == (operator == "IN")
    if operator == "CONTAINS_TOKEN":
        return str(flt.get("value", "")).lower() in (text or "").lower().split()
    number = _number(deal, name)
    try:
        low = float(flt["value"])
        high = float(flt["highValue"]) if operator == "BETWEEN" else 0.0
    except (KeyError, TypeError, ValueError):
        raise BadRequest(f"{operator} on {name} needs numeric values") from None
    if number is None:
        return False
    compare = {
        "BETWEEN": low <= number <= high,
        "GT": number > low,
        "GTE": number >= low,
        "LT": number < low,
        "LTE": number <= low,
    }
    if operator not in compare:
        raise BadRequest(f"unknown operator {operator}")
    return compare[operator]


def _record(deal: Deal, properties: list[str]) -> dict[str, Any]:
    """A record as HubSpot sends one: the asked properties plus the three it always adds."""
    names = {"hs_object_id", "createdate", "hs_lastmodifieddate", *properties}
    return {
        "id": str(deal.id),
        "properties": {n: deal.properties.get(n) for n in sorted(names)},
        "createdAt": deal.properties["createdate"],
        "updatedAt": deal.properties["hs_lastmodifieddate"],
        "archived": False,
    }


class Crm:
    """The deals, the calls counted and the rate windows, shared by the handler threads."""

    def __init__(self, deals: list[Deal], token: str) -> None:
        self.deals = deals
        self.ids = [d.id for d in deals]
        self.token = token
        self.lock = threading.Lock()
        self.matches: dict[str, list[Deal]] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: dict[str, int] = {"search": 0, "list": 0, "other": 0}
            self.rate_limited = 0
            self.search_second = (0, 0)  # (second, searches in it)
            self.list_calls: deque[float] = deque()

    def admit_search(self) -> bool:
        with self.lock:
            second = int(time.time())
            current, used = self.search_second
            used = used + 1 if current == second else 1
            self.search_second = (second, used)
            if used > SEARCHES_PER_SECOND:
                self.rate_limited += 1
                return False
            return True

    def admit_list(self) -> tuple[bool, int]:
        """Whether the call fits the rolling 10 seconds, and what is left of them."""
        with self.lock:
            now = time.monotonic()
            while self.list_calls and self.list_calls[0] <= now - 10:
                self.list_calls.popleft()
            if len(self.list_calls) >= CALLS_PER_TEN_SECONDS:
                self.rate_limited += 1
                return False, 0
            self.list_calls.append(now)
            return True, CALLS_PER_TEN_SECONDS - len(self.list_calls)

    def search(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list) or len(groups) > 5:
            raise BadRequest("at most 5 filterGroups")
        for group in groups:
            if len(group.get("filters") or []) > 10:
                raise BadRequest("at most 10 filters in a filter group")
        limit = int(body.get("limit", 10))
        if not 0 < limit <= SEARCH_PAGE_MAX:
            raise BadRequest(f"limit must be between 1 and {SEARCH_PAGE_MAX}")
        offset = int(body.get("after") or 0)
        if offset + limit > RESULT_CAP:
            raise BadRequest(
                f"The search cannot page past {RESULT_CAP} results: after={offset} limit={limit}"
            )
        key = json.dumps(groups, sort_keys=True)
        with self.lock:
            found = self.matches.get(key)
        if found is None:
            found = [
                d
                for d in self.deals
                if not groups or any(all(_matches(d, f) for f in g["filters"]) for g in groups)
            ]
            with self.lock:
                self.matches[key] = found
        properties = [str(p) for p in body.get("properties") or []]
        page = found[offset : offset + limit]
        reply: dict[str, Any] = {
            "total": len(found),
            "results": [_record(d, properties) for d in page],
        }
        if offset + limit < len(found):
            after = str(offset + limit)
            reply["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return reply

    def list(self, query: dict[str, list[str]], base: str) -> dict[str, Any]:
        try:
            limit = int(query.get("limit", [str(LIST_PAGE_DEFAULT)])[0])
            after = int(query.get("after", ["0"])[0])
        except ValueError:
            raise BadRequest("limit and after must be integers") from None
        if not 0 < limit <= LIST_PAGE_MAX:
            raise BadRequest(f"limit must be between 1 and {LIST_PAGE_MAX}")
        properties = [p for v in query.get("properties", []) for p in v.split(",") if p]
        start = bisect.bisect_left(self.ids, after)
        page = self.deals[start : start + limit]
        reply: dict[str, Any] = {"results": [_record(d, properties) for d in page]}
        if start + limit < len(self.deals):
            nxt = str(self.deals[start + limit].id)
            link = f"{base}/crm/v3/objects/deals?after={nxt}&limit={limit}"
            reply["paging"] = {"next": {"after": nxt, "link": link}}
        return reply


def _error(category: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": "3f1a2b9e-0000-4000-8000-000000000000",
        "category": category,
        **extra,
    }


def _rate_limited(policy: str) -> dict[str, Any]:
    message = f"You have reached your {policy.lower()} limit."
    return _error("RATE_LIMITS", message, errorType="RATE_LIMIT", policyName=policy)


def handler(crm: Crm, latency: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: with Nagle on, the client's delayed ACK would
        # hold the body ~40 ms and be counted against whichever client reads more pages.
        disable_nagle_algorithm = True

        def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {crm.token}":
                return True
            self._reply(
                401, _error("INVALID_AUTHENTICATION", "Authentication credentials not found.")
            )
            return False

        def _routed(self, path: str, route: str, endpoint: str) -> bool:
            """Authorized, waited the latency and counted: whether ``path`` is ``route``."""
            if not self._authorized():
                return False
            time.sleep(latency)
            known = path == route
            with crm.lock:
                crm.calls[endpoint if known else "other"] += 1
            if not known:
                self._reply(404, _error("OBJECT_NOT_FOUND", f"No route for {path}"))
            return known

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_stats":
                with crm.lock:
                    stats = {**crm.calls, "rate_limited": crm.rate_limited}
                self._reply(200, stats)
                return
            if not self._routed(url.path, "/crm/v3/objects/deals", "list"):
                return
            admitted, remaining = crm.admit_list()
            headers = {
                "X-HubSpot-RateLimit-Max": str(CALLS_PER_TEN_SECONDS),
                "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            }
            if not admitted:
                self._reply(429, _rate_limited("TEN_SECONDLY_ROLLING"), headers)
                return
            base = f"http://{self.headers.get('Host', '127.0.0.1')}"
            try:
                self._reply(200, crm.list(parse_qs(url.query), base), headers)
            except BadRequest as exc:
                self._reply(400, _error("VALIDATION_ERROR", str(exc)), headers)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path == "/_reset":
                crm.reset()
                self._reply(200, {"reset": True})
                return
            if not self._routed(self.path, "/crm/v3/objects/deals/search", "search"):
                return
            if not crm.admit_search():
                self._reply(429, _rate_limited("SECONDLY"))
                return
            try:
                self._reply(200, crm.search(json.loads(raw or b"null")))
            except (BadRequest, ValueError, TypeError, KeyError) as exc:
                self._reply(400, _error("VALIDATION_ERROR", str(exc)))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--won-share", type=float, default=0.08)
    parser.add_argument("--quarter", type=date.fromisoformat, default=date(2026, 7, 1))
    parser.add_argument("--token", default="pat-na1-bench-crm")
    args = parser.parse_args()
    crm = Crm(make_deals(args.deals, args.won_share, args.quarter), args.token)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(crm, args.latency_ms / 1000))
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
