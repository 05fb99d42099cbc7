"""``POST /api/v1/push/{data_source_id}``: figures from other systems, signed, no API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from app.core.schemas import ERROR_RESPONSES, ErrorBody, IdPath
from app.core.values import MAX_ABS_VALUE
from app.push import service
from connectors.push import METRIC_NAME

router = APIRouter(prefix="/api/v1", tags=["push"])


class PushAccepted(BaseModel):
    accepted: int = Field(description="Items in the push")
    observations_written: int = Field(description="Observations written or rewritten")
    unmatched_metrics: list[str] = Field(description="Metrics that no mapping of the source uses")
    sync_run_id: int = Field(description="The sync run recording this push")


_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["date", "metric", "value"],
    "additionalProperties": False,
    "properties": {
        "date": {"type": "string", "format": "date"},
        "metric": {"type": "string", "pattern": METRIC_NAME.pattern},
        "value": {"type": "number", "minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE},
        "group": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
    },
}
_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "maxItems": service.MAX_ITEMS, "items": _ITEM_SCHEMA}
            }
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{code: body for code, body in ERROR_RESPONSES.items() if code not in (403, 404)},
    400: {"model": ErrorBody, "description": "The body is nested too deeply to be read"},
    401: {
        "model": ErrorBody,
        "description": "Missing, malformed, stale or wrong signature; the same answer for an "
        "id that is not a push source, so unsigned callers learn nothing about the sources",
    },
    409: {
        "model": ErrorBody,
        "description": "The source is disabled, or this signed push was already accepted",
    },
    413: {"model": ErrorBody, "description": "The body is over 1 MB"},
    422: {
        "model": ErrorBody,
        "description": "Not a list of valid items; the detail names the first bad item by index "
        "(values must be finite and within ±1e15, also times the mapping's scale)",
    },
}


async def _read_body(request: Request) -> bytes:
    """The raw body, refused as soon as it passes the cap instead of after reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > service.MAX_BODY_BYTES:
        raise service.too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > service.MAX_BODY_BYTES:
            raise service.too_large()
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/push/{data_source_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_RESPONSES,
    openapi_extra=_OPENAPI,
)
async def push(
    data_source_id: IdPath,
    request: Request,
    x_krsync_timestamp: Annotated[
        str | None, Header(description="Unix time in seconds when the push was signed")
    ] = None,
    x_krsync_signature: Annotated[
        str | None,
        Header(description='sha256=<hex HMAC-SHA256 of "{timestamp}.{body}"> with the secret'),
    ] = None,
) -> PushAccepted:
    """Figures for a `push` source: a JSON list of `{date, metric, value, group?}`.

    Signed with the source's `secret`, no API key; each signature is accepted once. Each item
    is written to the source's mappings of its metric whose `group` filters let it through;
    metrics no mapping uses are listed in `unmatched_metrics`. Pushing the same figures again,
    signed anew, changes nothing.
    """
    body = await _read_body(request)
    result = await run_in_threadpool(
        service.receive, data_source_id, x_krsync_timestamp, x_krsync_signature, body
    )
    return PushAccepted(**result)
