"""The FastAPI app: wiring only."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError

from app import health
from app.auth.router import router as api_keys_router
from app.core.errors import DomainError
from app.okr.router import router as okr_router


def _error(status: int, detail: str, code: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code, "field": field}, status_code=status)


def create_app() -> FastAPI:
    app = FastAPI(
        title="krsync",
        version="0.1.0",
        description="Marketing key results kept honest and current: connectors pull the figures, "
        "the API reports progress, status, forecasts and daily series.",
    )

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        response = _error(exc.status_code, exc.message, exc.code, exc.field)
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # A race the service's checks could not see (two writers at once): the write lost.
        return _error(409, "the write conflicts with stored data; reload and retry", "conflict")

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        return _error(503, "the database is unavailable; retry shortly", "unavailable")

    app.include_router(health.router)
    app.include_router(okr_router)
    app.include_router(api_keys_router)
    return app


app = create_app()

__all__ = ["RequestValidationError", "app", "create_app"]
