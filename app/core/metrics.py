"""Prometheus metrics: what the syncs and the API did, for ``GET /metrics``.

The metrics live on a registry of their own rather than prometheus-client's global one, so
nothing a library registers globally leaks in and a second app instance (tests build several)
shares, not re-registers, the same collectors. They are module-level and therefore
process-wide: tests compare values before and after rather than expecting zeros.

Labels are bounded on purpose: a connector key (one per installed connector), a sync status,
an HTTP method, a status code and a route's path *template* (``/api/v1/key-results/{kr_id}``,
never the raw path, whose ids would create a series per key result).

Several processes: every uvicorn worker (``krsync serve --workers N``) has its own registry, so
a scrape sees the one worker that answered it. Set ``PROMETHEUS_MULTIPROC_DIR`` to an empty,
writable directory before the workers start and :func:`render` aggregates every worker's
values from the files prometheus-client keeps there (the process and platform collectors are
per-process and are left out in that mode). Clear the directory between deployments.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_iter_route_contexts: Callable[[list[BaseRoute]], Iterator[Any]] | None
try:
    from fastapi.routing import iter_route_contexts as _iter_route_contexts
except ImportError:  # FastAPI before route contexts
    _iter_route_contexts = None

__all__ = [
    "CONTENT_TYPE",
    "RequestMetricsMiddleware",
    "RouteTemplates",
    "observe_request",
    "record_sync",
    "register_live",
    "registry",
    "render",
]

#: The classic text format (Prometheus' ``text/plain; version=0.0.4``), which every scraper reads.
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
#: Label of requests no route matched (404s of unknown paths, slash redirects).
UNMATCHED: Final = "unmatched"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# ``*_created`` series double the series count for a timestamp no dashboard of ours reads.
disable_created_metrics()  # type: ignore[no-untyped-call]

registry = CollectorRegistry(auto_describe=True)
# The standard process_* and python_* series; they cost a /proc read per scrape.
registry.register(PROCESS_COLLECTOR)
registry.register(PLATFORM_COLLECTOR)

SYNC_RUNS = Counter(
    "krsync_sync_runs",
    "Finished sync runs by connector and outcome (succeeded, partial, failed).",
    ["connector", "status"],
    registry=registry,
)
API_CALLS = Counter(
    "krsync_connector_api_calls",
    "HTTP requests sent to platforms by finished runs, retries and token refreshes included.",
    ["connector"],
    registry=registry,
)
RETRIES = Counter(
    "krsync_connector_retries",
    "Requests to platforms that were retried (429, 5xx, connection errors).",
    ["connector"],
    registry=registry,
)
RATE_LIMITED = Counter(
    "krsync_connector_rate_limited",
    "429 Too Many Requests answers received from platforms.",
    ["connector"],
    registry=registry,
)
SYNC_DURATION = Histogram(
    "krsync_sync_duration_seconds",
    "Wall-clock time of a sync run, waiting for the source's lock included.",
    ["connector"],
    # a demo run takes a fraction of a second; a rate-limited backfill may take its whole budget
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800),
    registry=registry,
)
OBSERVATIONS_WRITTEN = Counter(
    "krsync_observations_written",
    "Daily observations written (inserted or replaced) by sync runs.",
    ["connector"],
    registry=registry,
)
REQUEST_DURATION = Histogram(
    "krsync_http_request_duration_seconds",
    "Time to answer an HTTP request to krsync, until the last byte of the body was handed on.",
    ["method", "route", "status"],
    registry=registry,
)


def record_sync(
    connector: str,
    status: str,
    seconds: float | None,
    api_calls: int = 0,
    retries: int = 0,
    rate_limited: int = 0,
    observations: int = 0,
) -> None:
    """Count one finished run; ``seconds`` None leaves the duration out (a skipped run)."""
    SYNC_RUNS.labels(connector=connector, status=status).inc()
    # Counters are touched even by zero, so every connector that ran has all its series.
    API_CALLS.labels(connector=connector).inc(max(api_calls, 0))
    RETRIES.labels(connector=connector).inc(max(retries, 0))
    RATE_LIMITED.labels(connector=connector).inc(max(rate_limited, 0))
    OBSERVATIONS_WRITTEN.labels(connector=connector).inc(max(observations, 0))
    if seconds is not None:
        SYNC_DURATION.labels(connector=connector).observe(max(seconds, 0.0))


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One answered request; an unusual method is labelled ``other`` (a scanner's junk)."""
    method = method.upper()
    REQUEST_DURATION.labels(
        method=method if method in _METHODS else "other", route=route, status=str(status)
    ).observe(seconds)


class RouteTemplates:
    """The full path template of the route a request was routed to, or ``unmatched``.

    Routers record what they matched in the scope: Starlette's and FastAPI's API routes as
    ``route`` (a partial match too, which is how a 405 gets its template), FastAPI's router
    only the ``endpoint`` of a mount or a plain Starlette route (the docs, static files).
    FastAPI from 0.16x records an included route *as declared*, without the prefix it was
    included under; the app's route contexts give each one's full template, and a route
    included under several prefixes is told apart by matching the request's path.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        # Keyed by id(): the objects themselves are kept too, so no id is reused meanwhile.
        self._by_id: dict[int, tuple[object, list[tuple[str, re.Pattern[str]]]]] = {}
        for route, template in _templates(routes):
            handler = getattr(route, "endpoint", None) or getattr(route, "app", None)
            for key in (route, handler):
                if key is not None:
                    _, candidates = self._by_id.setdefault(id(key), (key, []))
                    candidates.append((template, compile_path(template)[0]))

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        key = route if route is not None else scope.get("endpoint")
        if key is None:
            return UNMATCHED
        _, candidates = self._by_id.get(id(key), (None, []))
        if len(candidates) > 1:
            path, root = scope.get("path", ""), scope.get("root_path", "")
            path = path.removeprefix(root) if root else path
            return next((t for t, regex in candidates if regex.match(path)), candidates[0][0])
        if candidates:
            return candidates[0][0]
        template = getattr(route, "path_format", None)  # a route added after the first request
        return template if isinstance(template, str) and template else UNMATCHED


def _templates(routes: Iterable[BaseRoute]) -> Iterator[tuple[object, str]]:
    if _iter_route_contexts is None:  # older FastAPI copies included routes, prefix and all
        for route in routes:
            template = getattr(route, "path_format", None)
            if isinstance(template, str) and template:
                yield route, template
        return
    for context in _iter_route_contexts(list(routes)):
        if context.path_format:
            yield context.original_route, context.path_format


#: Collectors that read the current state at each scrape (the sources' health), by name.
_live: dict[str, Collector] = {}


def register_live(name: str, collector: Collector) -> None:
    """Add a collector that reads state when scraped; the same name twice registers it once
    (tests build several apps in one process)."""
    if name in _live:
        return
    _live[name] = collector
    registry.register(collector)


def render() -> tuple[bytes, str]:
    """The exposition body and its content type."""
    source = registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        source = CollectorRegistry()
        multiprocess.MultiProcessCollector(source)  # type: ignore[no-untyped-call]
        # State read from the database is the same whichever worker answers.
        for collector in _live.values():
            source.register(collector)
    return generate_latest(source), CONTENT_TYPE


class RequestMetricsMiddleware:
    """Times every HTTP request: one ``perf_counter`` pair and one histogram observation.

    Pure ASGI, so a streamed body passes through untouched (``BaseHTTPMiddleware`` would
    buffer it through a memory stream) and exception handlers run inside, their status seen
    like any other. The route is read once the app is done, when the router has recorded it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: RouteTemplates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler becomes a 500 further out

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            observe_request(scope["method"], self._route(scope), status, seconds)

    def _route(self, scope: Scope) -> str:
        if self._templates is None:  # the routes are all in place by the first request
            router = getattr(scope.get("app"), "router", None)
            self._templates = RouteTemplates(getattr(router, "routes", ()))
        return self._templates.of(scope)
