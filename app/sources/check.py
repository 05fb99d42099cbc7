"""Asking a source's platform whether it answers, and whether a mapping's metric exists there."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session

from app.core.redact import redact
from app.models import DataSource
from app.sync.connect import connector_for, open_connector
from app.sync.errors import SourceConfigError, classify
from connectors.base import (
    CheckResult,
    Connector,
    MappingError,
    MetricQuery,
)

log = logging.getLogger("krsync.sync")


def check_source(session: Session, source: DataSource) -> tuple[bool, str]:
    """The connector's cheap call; adopts the platform's reporting timezone when it says one."""
    try:
        result = asyncio.run(_check(source))
    except Exception as exc:
        return False, classify(exc)
    if result.timezone and source.timezone == "UTC" and result.timezone != "UTC":
        source.timezone = result.timezone
    source.state = {**(source.state or {}), "notices": [redact(n) for n in result.notices]}
    return True, redact(result.message)


async def _check(source: DataSource) -> CheckResult:
    async with open_connector(source) as connector:
        return await connector.check()


#: How long a mapping's online check may hold up the request that creates it.
ONLINE_CHECK_SECONDS = 10.0


def check_mapping_online(source: DataSource, query: MetricQuery) -> None:
    """The platform's own metadata says whether the metric and fields exist (SPEC section 4).

    Only a ``MappingError`` refuses the mapping. A source that can't be reached right now
    (down, slow, bad credentials, rate limited) leaves the check to the offline catalogue:
    the admin may be wiring mappings before the credentials work, and the first sync will
    say what is wrong.
    """
    try:
        built = connector_for(source)
    except SourceConfigError:
        return
    if built.cls.validate_mapping_online is Connector.validate_mapping_online:
        return  # nothing to ask: skip building a client

    async def run() -> None:
        async with open_connector(built) as connector:
            await asyncio.wait_for(connector.validate_mapping_online(query), ONLINE_CHECK_SECONDS)

    try:
        asyncio.run(run())
    except MappingError:
        raise
    except Exception as exc:
        log.info(
            "mapping checked offline only: %s",
            classify(exc),
            extra={"source_id": source.id, "source": source.name},
        )
