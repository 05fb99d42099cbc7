"""Source health (SPEC section 7): what a source's last runs and its credentials say about it.

A source's `health` is computed, never stored: from facts kept on its row (failed runs in a row,
the last run's status and warnings, the platform's refusal of the credentials, a pause, when
the credentials run out). :func:`record` is the one place those facts change, always inside the
transaction of what changed them (the run's finish, a resume, new credentials), and it answers
the health before and after: the place where the ``source.*`` events of section 7 are raised.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.core import clock
from app.core.db import get_sessionmaker
from app.models import DataSource

log = logging.getLogger("krsync.health")

Health = Literal["healthy", "degraded", "failing", "needs_reauth", "paused"]
HEALTHS: tuple[Health, ...] = get_args(Health)
#: Credentials that end within this are to be renewed now: a week leaves time to find the
#: person who can sign in to the platform again.
REAUTH_WITHIN = timedelta(days=7)
#: A platform API version retired within this is announced on the source (SPEC section 4).
SUNSET_WITHIN = timedelta(days=60)


# --- what changes a source's health ------------------------------------------------------------


@dataclass(frozen=True)
class RunFinished:
    """A run's outcome, recorded in the transaction that writes it."""

    status: Literal["succeeded", "partial", "failed"]
    at: datetime
    warned: bool = False
    #: For a failed run: the redacted error when the platform refused the credentials.
    auth_error: str | None = None
    #: The credentials as the run left them (a refresh may have rotated them); None: unknown.
    credentials: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class CredentialsStored:
    """Someone stored new credentials (API, browser form, OAuth connect): the platform's
    last refusal was about the old ones."""

    credentials: Mapping[str, Any] | None


@dataclass(frozen=True)
class Resumed:
    """An admin resumed the source: the count starts again from zero."""

    at: datetime


Change = RunFinished | CredentialsStored | Resumed


@dataclass(frozen=True)
class HealthChange:
    """The health before and after one change; ``paused`` says this change paused the source."""

    source_id: int
    old: Health
    new: Health
    consecutive_failures: int
    paused: bool = False

    @property
    def changed(self) -> bool:
        return self.old != self.new


def record(
    source: DataSource, change: Change, *, now: datetime, pause_after: int = 0
) -> HealthChange:
    """Apply one change to the source's health facts and decide its health transition.

    Call it inside the transaction that makes the change, so the facts and what caused them
    commit together. ``pause_after`` (KRSYNC_PAUSE_AFTER_FAILURES) pauses the source once that
    many runs in a row failed; 0 never pauses.
    """
    old = health_of(source, now)
    paused = False
    failures = source.consecutive_failures or 0
    facts: dict[str, Any] = {}
    if isinstance(change, RunFinished):
        facts.update(
            last_attempt_at=change.at, last_run_status=change.status, last_run_warned=change.warned
        )
        if change.status == "failed":
            failures += 1
            # A later failure of another kind (the platform down) says nothing of the
            # credentials: the refusal stands until a run gets through or they are replaced.
            if change.auth_error is not None:
                facts["auth_error"] = change.auth_error
            if pause_after and failures >= pause_after and source.paused_at is None:
                facts["paused_at"] = change.at
                paused = True
        else:
            failures = 0
            facts["auth_error"] = None
        # Only an end the credentials name moves it: some connectors' models keep no
        # `refresh_token_expires_at`, and the end learnt at connect time must survive their runs.
        end = None if change.credentials is None else credentials_expiry(change.credentials)
        if end is not None:
            facts["credentials_expire_at"] = end
    elif isinstance(change, CredentialsStored):
        facts["auth_error"] = None
        facts["credentials_expire_at"] = (
            None if change.credentials is None else credentials_expiry(change.credentials)
        )
    else:
        facts["paused_at"] = None
        failures = 0
    facts["consecutive_failures"] = failures
    for name, value in facts.items():
        # Writing an equal value would still mark the row changed and move its `updated_at`.
        if getattr(source, name) != value:
            setattr(source, name, value)
    new = health_of(source, now)
    result = HealthChange(source.id, old, new, failures, paused)
    if result.changed:
        _log_transition(source, result, now, worse=isinstance(change, RunFinished))
    return result


def _log_transition(source: DataSource, change: HealthChange, now: datetime, worse: bool) -> None:
    extra = {"source_id": source.id, "source": source.name}
    if worse and change.new in ("failing", "needs_reauth", "paused"):
        why = reason_of(source, now) or "its last run failed"
        log.warning(
            "source %r is %s (was %s): %s",
            source.name,
            change.new,
            change.old,
            why,
            extra=extra,
        )
    else:
        log.info("source %r is %s (was %s)", source.name, change.new, change.old, extra=extra)


# --- reading it --------------------------------------------------------------------------------


def health_of(source: DataSource, now: datetime) -> Health:
    """Paused first (nothing syncs), then what a person must do, then how the last run went."""
    if source.paused_at is not None:
        return "paused"
    if reauth_reason(source, now) is not None:
        return "needs_reauth"
    if source.last_run_status == "failed":
        return "failing"
    if source.last_run_status == "partial" or source.last_run_warned:
        return "degraded"
    return "healthy"


def reauth_reason(source: DataSource, now: datetime) -> str | None:
    """Why someone has to connect the source again, or None."""
    if source.auth_error:
        return source.auth_error
    end = source.credentials_expire_at
    if end is None:
        return None
    if end <= now:
        return (
            f"the stored credentials expired on {end:%Y-%m-%d}: connect the source again "
            "(or store new credentials)"
        )
    if end - now <= REAUTH_WITHIN:
        return (
            f"the stored credentials expire on {end:%Y-%m-%d}: connect the source again "
            "(or store new credentials) before then"
        )
    return None


def reason_of(source: DataSource, now: datetime) -> str | None:
    """One sentence on why the source is not healthy, for reads, logs and the CLI."""
    health = health_of(source, now)
    failures = source.consecutive_failures or 0
    if health == "paused":
        since = source.paused_at
        when = f" on {since:%Y-%m-%d %H:%M} UTC" if since is not None else ""
        return (
            f"paused{when} after {failures} failed run(s) in a row: scheduled syncs skip it "
            "until it is resumed (POST /api/v1/data-sources/{id}/resume or "
            "`krsync sources resume`)"
        ).replace("{id}", str(source.id))
    if health == "needs_reauth":
        return reauth_reason(source, now)
    if health == "failing":
        return f"the last {failures} run(s) failed" if failures > 1 else "the last run failed"
    if health == "degraded":
        if source.last_run_status == "partial":
            return "the last run was partial: some mappings could not be fetched"
        return "the last run finished with warnings"
    return None


def credentials_expiry(credentials: Mapping[str, Any]) -> datetime | None:
    """When credentials stop working with nobody to renew them, where they say.

    With a refresh token, its own end (LinkedIn's live a year: `refresh_token_expires_at`,
    kept from the token answer's `refresh_token_expires_in`); an access token's end matters
    only when there is no refresh token, since otherwise the engine renews it.
    """
    if credentials.get("refresh_token"):
        value = credentials.get("refresh_token_expires_at")
    elif credentials.get("access_token"):
        value = credentials.get("expires_at")
    else:
        return None
    return _moment(value)


def _moment(value: Any) -> datetime | None:
    """Unix seconds or an ISO date-time (as the connectors' models accept them)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (OverflowError, OSError, ValueError):
            pass
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


def sunset_notice(
    connector_name: str, version: str | None, sunset: date | None, today: date
) -> str | None:
    """A retirement announced within SUNSET_WITHIN, in the words an admin acts on."""
    if version is None or sunset is None or sunset - today > SUNSET_WITHIN:
        return None
    verb = "was retired" if sunset <= today else "is retired"
    return (
        f"{connector_name} API version {version} {verb} by its vendor on {sunset.isoformat()}: "
        "set `api_version` in the source's config to a newer version"
        + (" before then" if sunset > today else "")
    )


# --- Prometheus --------------------------------------------------------------------------------


class SourceHealthCollector(Collector):
    """Sources per health, and each source's health, read from the database at each scrape.

    A collector rather than gauges set by the runs: every replica and worker answers from the
    same rows, a deleted source's series go with it, and a database that is away leaves the
    per-source series out instead of failing the scrape.
    """

    def describe(self) -> Iterable[Metric]:
        # Named here so registering does not call collect() (and the database) at import.
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        try:
            with get_sessionmaker()() as session:
                sources = list(session.scalars(select(DataSource).order_by(DataSource.id)))
        except SQLAlchemyError as exc:
            log.debug("source health left out of the metrics: %s", type(exc).__name__)
            return []
        return list(self._families(sources, clock.utcnow()))

    @staticmethod
    def _families(
        sources: Iterable[DataSource] = (), now: datetime | None = None
    ) -> Iterator[Metric]:
        per_health = GaugeMetricFamily(
            "krsync_sources", "Data sources by health.", labels=["health"]
        )
        state = GaugeMetricFamily(
            "krsync_source_health",
            "1 for the source's current health, 0 for the others (a state set).",
            labels=["source_id", "source", "connector", "health"],
        )
        failures = GaugeMetricFamily(
            "krsync_source_consecutive_failures",
            "Failed runs of the source in a row.",
            labels=["source_id", "source", "connector"],
        )
        success = GaugeMetricFamily(
            "krsync_source_last_success_timestamp_seconds",
            "When the source last synced successfully (Unix seconds).",
            labels=["source_id", "source", "connector"],
        )
        counts = Counter[str]()
        for source in sources:
            assert now is not None
            health = health_of(source, now)
            counts[health] += 1
            labels = [str(source.id), source.name, source.connector]
            for each in HEALTHS:
                state.add_metric([*labels, each], 1.0 if each == health else 0.0)
            failures.add_metric(labels, float(source.consecutive_failures or 0))
            if source.last_success_at is not None:
                success.add_metric(labels, source.last_success_at.timestamp())
        for each in HEALTHS:
            per_health.add_metric([each], float(counts[each]))
        yield from (per_health, state, failures, success)
