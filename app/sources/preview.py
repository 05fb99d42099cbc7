"""The daily values a mapping would give, fetched from its platform and written nowhere."""

from __future__ import annotations

import asyncio
import time
from datetime import date

from sqlalchemy.orm import Session

from app.core.clock import today_in
from app.core.errors import InvalidInput
from app.core.http import (
    HttpLayerError,
    OAuthRefreshError,
    PrivateNetworkError,
)
from app.core.redact import redact
from app.core.values import storable
from app.models import DataSource, KeyResult, Mapping
from app.sync.connect import connector_for, open_connector
from app.sync.engine import RATE_LIMIT_BUDGET, fetch_within_budget, windows_of
from app.sync.errors import SourceConfigError, UpstreamError, classify
from app.sync.plan import build_query
from connectors.base import (
    ConnectorConfigError,
    ConnectorError,
    FetchResult,
    Window,
)


def preview_mapping(
    session: Session, mapping: Mapping, start: date, end: date
) -> list[tuple[date, str, str, float]]:
    """The daily values the source would give, written nowhere."""
    source = session.get(DataSource, mapping.data_source_id)
    kr = session.get(KeyResult, mapping.key_result_id)
    assert source is not None
    assert kr is not None
    return preview_values(source, kr.aggregation, mapping, start, end)


def preview_values(
    source: DataSource, aggregation: str, mapping: Mapping, start: date, end: date
) -> list[tuple[date, str, str, float]]:
    """What `preview_mapping` fetches, for a saved mapping or one not saved yet (the mapping
    builder's draft, never added to a session): only its fields are read."""
    try:
        built = connector_for(source)
    except SourceConfigError as exc:
        raise InvalidInput(classify(exc)) from exc
    try:
        query, spec = build_query(built.cls, mapping, aggregation)
    except ConnectorConfigError as exc:
        raise InvalidInput(classify(exc)) from exc
    today = today_in(source.timezone)
    window = Window(today, today) if spec.history == "snapshot" else Window(start, end)

    deadline = time.monotonic() + RATE_LIMIT_BUDGET

    async def run() -> FetchResult:
        async with open_connector(built, today=today) as connector:
            out = FetchResult()
            for part in windows_of(built.cls, window):
                result = await fetch_within_budget(connector, [query], part, deadline)
                out.values += result.values
                out.query_errors.update(result.query_errors)
            return out

    try:
        result = asyncio.run(run())
    except OAuthRefreshError as exc:
        error = UpstreamError if exc.transient else InvalidInput
        raise error(classify(exc)) from exc
    except (ConnectorConfigError, SourceConfigError, PrivateNetworkError) as exc:
        raise InvalidInput(classify(exc)) from exc
    except (ConnectorError, HttpLayerError) as exc:
        raise UpstreamError(classify(exc)) from exc
    if result.query_errors:
        raise InvalidInput(redact("; ".join(result.query_errors.values())))
    redate = today if spec.history == "snapshot" else None
    values = [
        (
            redate or v.date,
            mapping.group if v.group is None else v.group,
            mapping.role,
            float(v.value) * mapping.scale,
        )
        for v in result.values
        if storable(v.value) and storable(v.value * mapping.scale)
    ]
    return sorted(values)
