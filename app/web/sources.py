"""The data-source pages, for admins: every source at a glance, and one source in full.

What a source is (connector, schedule and its next runs in the source's
timezone, whether credentials are set, the API version), what it needs (notices, a "Connect"
button where its platform uses OAuth) and what its runs did. It is where the OAuth callback
returns to, and where "Test connection" and "Sync now" answer (their forms and the create, edit
and delete forms are in app.web.source_forms). The same service calls as
`/api/v1/data-sources` and `/api/v1/sync-runs`.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select

from app.core import clock
from app.core.cron import cron_trigger
from app.models import DataSource, OAuthApp
from app.sources import service
from app.sources.oauth_providers import provider_for_connector
from app.sources.schemas import CheckRead, DataSourceRead, SyncRunRead
from app.sync import history
from app.web.forms import FormState
from app.web.pages import AdminPage, Page, path_id

router = APIRouter(include_in_schema=False)

HEALTH_LABELS = {
    "healthy": "Healthy",
    "degraded": "Degraded",
    "failing": "Failing",
    "needs_reauth": "Needs reconnecting",
    "paused": "Paused",
}

_MAX_SOURCES = 500
_RUNS_SHOWN = 20


def next_runs(schedule: str, timezone: str, now: datetime, count: int = 3) -> list[datetime]:
    """The schedule's next firings, in the source's timezone (the scheduler reads it there)."""
    try:
        trigger = cron_trigger(schedule, timezone)
        zone = ZoneInfo(timezone)
    except (ValueError, LookupError):
        return []
    runs: list[datetime] = []
    previous: datetime | None = None
    moment = now.astimezone(zone)
    for _ in range(count):
        fire: datetime | None = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            break
        runs.append(fire.astimezone(zone))
        previous, moment = fire, fire
    return runs


@router.get("/sources")
def sources_page(page: AdminPage) -> Response:
    """Every data source: its connector, schedule and last success."""
    rows, total = service.list_sources(page.session, _MAX_SOURCES, 0)
    context: dict[str, Any] = {
        "principal": page.principal,
        "sources": [DataSourceRead.model_validate(r) for r in rows],
        "total": total,
    }
    return page.render("sources/index.html", context)


def source_row(page: Page, source_id: str) -> DataSource:
    """The source a page's path names, or the 404 page."""
    return page.found_or_404("data source", source_id, partial(service.get_source, page.session))


def render_source(
    page: Page,
    row: DataSource,
    *,
    check: CheckRead | None = None,
    sync: FormState | None = None,
    started: int | None = None,
) -> Response:
    """The source page, with what a "Test connection" or "Sync now" just answered, if any."""
    source = DataSourceRead.model_validate(row)
    runs, total_runs = history.list_runs(page.session, row.id, None, _RUNS_SHOWN, 0)
    provider = provider_for_connector(source.connector)
    context: dict[str, Any] = {
        "principal": page.principal,
        "source": source,
        "next_runs": next_runs(source.schedule, source.timezone, clock.utcnow()),
        "runs": [SyncRunRead.model_validate(r) for r in runs],
        "total_runs": total_runs,
        "provider": provider,
        "oauth_app_set": provider is not None
        and page.session.scalar(select(OAuthApp.id).where(OAuthApp.provider == provider.key))
        is not None,
        "health_labels": HEALTH_LABELS,
        "check": check,
        "sync_errors": sync.errors if sync else {},
        "sync_values": sync.values if sync else {"from": "", "to": ""},
        "started": started,
    }
    return page.render("sources/show.html", context, sync.status_code if sync else 200)


@router.get("/sources/{source_id}")
def source_page(page: AdminPage, source_id: str, started: Annotated[str, Query()] = "") -> Response:
    """One source: what it is, what it needs, and what its runs did."""
    row = source_row(page, source_id)
    return render_source(page, row, started=path_id(started) or None)
