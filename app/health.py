"""Liveness and readiness probes: no auth, no secrets, cheap."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.core.db import get_engine
from app.core.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready"}})
def readyz() -> JSONResponse:
    """The database answers and its schema is at the migrations' head."""
    try:
        current = current_revision(get_engine())
    except SQLAlchemyError as exc:
        reason = type(exc.orig if hasattr(exc, "orig") else exc).__name__
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable ({reason})"}, status_code=503
        )
    head = head_revision()
    if current != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "reachable",
                "migrations": f"at {current or 'nothing'}, head is {head}: run `krsync migrate`",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "reachable", "migrations": head})
