"""The FastAPI app: wiring only."""

from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app import health
from app.auth.deps import authorize_unchecked
from app.auth.router import audit_router
from app.auth.router import router as api_keys_router
from app.core import fastread, metrics
from app.core.errors import DomainError, reason
from app.core.logging import configure_logging
from app.core.proxies import TrustedProxies
from app.core.settings import get_settings
from app.notify.router import router as notify_router
from app.okr.router import router as okr_router
from app.push.router import router as push_router
from app.review.router import router as review_router
from app.sources.oauth_router import router as oauth_apps_router
from app.sources.router import router as sources_router
from app.sync.scheduler import lifespan as scheduler_lifespan
from app.sync.source_health import SourceHealthCollector
from app.web.carry_over import router as carry_over_pages_router
from app.web.cycles import router as cycle_pages_router
from app.web.docs import router as docs_router
from app.web.key_result_forms import router as key_result_forms_router
from app.web.key_results import router as key_result_pages_router
from app.web.keys import router as keys_router
from app.web.mappings import router as mapping_pages_router
from app.web.notifications import router as notification_pages_router
from app.web.oauth import router as oauth_web_router
from app.web.oauth_apps import router as oauth_app_pages_router
from app.web.objectives import router as objective_pages_router
from app.web.okrs import router as okr_pages_router
from app.web.pages import PageRefused
from app.web.retrospective import router as retrospective_pages_router
from app.web.router import router as web_router
from app.web.source_forms import router as source_forms_router
from app.web.sources import router as source_pages_router


def _error(
    status: int,
    detail: str,
    code: str,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = {"detail": detail, "code": code, "field": field, "errors": errors}
    return JSONResponse(body, status_code=status)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    """Say what is wrong in one line; never echo the input back (it may hold a secret)."""
    errors = []
    for err in exc.errors():
        loc = [p for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        errors.append(
            {
                "loc": list(err.get("loc", ())),
                "msg": reason(str(err.get("msg"))),
                "type": err["type"],
            }
        )
        if len(errors) == 1:
            field = ".".join(str(p) for p in loc) or None
    parts = [
        f"{'.'.join(str(p) for p in e['loc'] if p not in ('body', 'query', 'path')) or 'body'}: "
        f"{e['msg']}"
        for e in errors
    ]
    return _error(422, "; ".join(parts), "invalid_input", field if errors else None, errors)


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
#: What FastAPI answers for a body it can't read, before any dependency (the role check) ran.
_BODY_UNREADABLE = frozenset({400, 413})


def _domain_error(exc: DomainError) -> JSONResponse:
    response = _error(exc.status_code, exc.message, exc.code, exc.field)
    if exc.status_code == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _refused_first(request: Request) -> JSONResponse | None:
    """The 401 or 403 a caller gets before any word on a body the route never read."""
    try:
        await authorize_unchecked(request)
    except DomainError as exc:
        return _domain_error(exc)
    return None


def _allowed_methods(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE and isinstance(route, APIRoute):
            methods |= route.methods or set()
    return methods


@functools.cache  # once per process
def _freeze_startup_heap() -> None:
    """Hide what startup built (modules, routes, schemas, templates: some 200,000 objects) from
    the garbage collector.

    Otherwise every full collection walks all of it, about 90 ms on the benchmark machine, and
    lands on whichever request happens to be running: a page that allocates a lot (the
    key-result page's points and chart) triggered one every ~16 requests, which set its p99.
    """
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with scheduler_lifespan(app):
        _freeze_startup_heap()
        try:
            yield
        finally:
            await fastread.close()


def create_app() -> FastAPI:
    configure_logging(get_settings())
    app = FastAPI(
        title="krsync",
        version="0.1.0",
        description="Marketing key results kept honest and current: connectors pull the figures, "
        "the API reports progress, status, forecasts and daily series.",
        lifespan=_lifespan,
        # FastAPI's own pages load their scripts from a CDN; app.web.docs serves /docs whole.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(metrics.RequestMetricsMiddleware)
    metrics.register_live("source_health", SourceHealthCollector())
    # Outermost, so everything inside sees the client's scheme and address as the proxy told.
    app.add_middleware(TrustedProxies)

    @app.exception_handler(PageRefused)
    async def _page_refused(_: Request, exc: PageRefused) -> Response:
        return exc.response

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return _domain_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in _BODY_UNREADABLE and (refused := await _refused_first(request)):
            return refused
        response = _error(
            exc.status_code, str(exc.detail), _HTTP_CODES.get(exc.status_code, "error")
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; list them all.
            response.headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if refused := await _refused_first(request):
            return refused
        return _validation_error(exc)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # A race the service's checks could not see (two writers at once): the write lost.
        return _error(409, "the write conflicts with stored data; reload and retry", "conflict")

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        return _error(503, "the database is unavailable; retry shortly", "unavailable")

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        """Prometheus metrics: sync runs, connector calls, sources' health, latency; no auth."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    app.include_router(health.router)
    app.include_router(okr_router)
    app.include_router(review_router)
    app.include_router(api_keys_router)
    app.include_router(audit_router)
    app.include_router(sources_router)
    app.include_router(oauth_apps_router)
    app.include_router(push_router)
    app.include_router(notify_router)
    app.include_router(web_router)
    app.include_router(oauth_web_router)
    app.include_router(oauth_app_pages_router)
    app.include_router(notification_pages_router)
    app.include_router(keys_router)
    # Before the source pages: `/sources/new` is a page of its own, not source "new".
    app.include_router(source_forms_router)
    app.include_router(source_pages_router)
    app.include_router(okr_pages_router)
    app.include_router(docs_router)
    app.include_router(key_result_pages_router)
    app.include_router(mapping_pages_router)
    app.include_router(cycle_pages_router)
    app.include_router(retrospective_pages_router)
    app.include_router(carry_over_pages_router)
    app.include_router(objective_pages_router)
    app.include_router(key_result_forms_router)
    return app


app = create_app()
