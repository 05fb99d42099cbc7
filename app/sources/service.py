"""Connectors, data sources and mappings: the rules behind the routes.

The sync engine (``app.sync.engine``), and the checks and previews built on it, are imported
inside the functions that need them: they pull in the HTTP layer and every connector dependency,
which listing or editing a source never needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from secrets import token_urlsafe
from typing import Any, cast

from fastapi import BackgroundTasks
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.auth.service import audit
from app.core import clock
from app.core.changes import apply_changes, jsonable, require_not_null
from app.core.clock import today_in
from app.core.db import count, equal_to, paged
from app.core.errors import Conflict, InvalidInput, found, reason
from app.core.redact import Redactor, register_secrets, secrets_in
from app.core.secrets import SecretKeyError
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import CheckIn, DataSource, KeyResult, Mapping, Observation, SyncRun, months
from app.sync.source_health import (
    CredentialsStored,
    HealthChange,
    Resumed,
    credentials_expiry,
    record,
    sunset_notice,
)
from connectors.base import (
    Aggregation,
    Connector,
    ConnectorError,
    Filter,
    MappingError,
    MetricQuery,
)
from connectors.registry import (
    ConnectorClass,
    UnknownConnectorError,
    get_connector,
    load_connectors,
)

log = logging.getLogger("krsync.sources")

#: Mapping fields whose change makes the stored figures measure something else.
MAPPING_FIELDS = ("data_source_id", "metric", "params", "filters", "role", "group", "scale")
#: Source fields whose change moves every figure (another account, other calendar days).
REFETCH_FIELDS = frozenset({"config", "timezone"})


# --- connectors -------------------------------------------------------------------------------


def list_connectors(limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Like the registry's `describe_connectors`, but a plugin that can't describe itself is
    left out (and logged) instead of taking the whole catalogue down with it."""
    items: list[dict[str, Any]] = []
    for key, cls in sorted(load_connectors().items()):
        try:
            items.append(cls.describe())
        except Exception as exc:  # a plugin's bug, not the caller's
            log.warning(
                "connector %r can't describe itself (%s: %s); left out of the catalogue",
                key,
                type(exc).__name__,
                exc,
            )
    return items[offset : offset + limit], len(items)


def _connector(key: str, field: str) -> ConnectorClass:
    try:
        return get_connector(key)
    except UnknownConnectorError as exc:
        raise InvalidInput(str(exc), field=field) from exc


def _model_error(
    prefix: str,
    exc: ValidationError,
    model: type[BaseModel],
    mask: Callable[[str], str] = str,
) -> InvalidInput:
    """Where and why, never the input: a credential's value must not come back in a 422."""
    parts: list[str] = []
    problems: dict[str, str] = {}
    first: str | None = None
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"])
        where = f"{prefix}.{loc}" if loc else prefix
        why = reason(err["msg"])
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            accepted = ", ".join(f"`{name}`" for name in model.model_fields) or "none"
            why = f"unknown field; accepted: {accepted}"
        parts.append(f"{where}: {mask(why)}")
        problems.setdefault(where, mask(why))
        first = first or where
    return InvalidInput("; ".join(parts), field=first, problems=problems)


def _validate_config(cls: ConnectorClass, config: dict[str, Any]) -> dict[str, Any]:
    """Stored as given: the engine validates it again with the same model on every run."""
    try:
        cls.config_model.model_validate(config)
    except ValidationError as exc:
        raise _model_error("config", exc, cls.config_model) from exc
    return config


def _encrypt(cls: ConnectorClass, credentials: dict[str, Any]) -> str | None:
    secrets = secrets_in(credentials)
    try:
        cls.credentials_model.model_validate(credentials)
    except ValidationError as exc:
        # A connector's own validator may quote what it was given; mask every value we hold.
        mask = Redactor(secrets).redact
        raise _model_error("credentials", exc, cls.credentials_model, mask) from None
    token = encrypt_credentials(credentials)
    # From now on the logging filter masks them, whichever code path mentions them.
    register_secrets(secrets)
    return token


# --- data sources -----------------------------------------------------------------------------


def get_source(session: Session, source_id: int) -> DataSource:
    return found(session.get(DataSource, source_id), f"data source {source_id}")


def source_notices(source: DataSource) -> list[str]:
    """What an admin must do for this source: its connector's word at the last check or sync,
    then the platform API version its vendor retires within 60 days (SPEC section 7), then a
    lookback shorter than the connector recommends (SPEC's default of 3 days is short for
    platforms whose recent figures arrive or change for longer)."""
    notices = [str(n) for n in (source.state or {}).get("notices", [])]
    try:
        cls = get_connector(source.connector)
    except UnknownConnectorError:
        return notices  # the next sync says the connector is missing
    version, sunset = source_api_version(source)
    retiring = sunset_notice(cls.name, version, sunset, clock.utcnow().date())
    if retiring is not None:
        notices.append(retiring)
    recommended = cls.recommended_lookback_days
    if recommended is not None and source.lookback_days < recommended:
        notices.append(
            f"{cls.name} figures of the last {recommended} days can still arrive or change "
            f"after a sync, and this source looks back {source.lookback_days}: set "
            f"`lookback_days` to {recommended} or more, or days synced earlier keep outdated "
            "figures"
        )
    return notices


def source_api_version(source: DataSource) -> tuple[str | None, date | None]:
    """The platform API version the source's calls use and the day its vendor retires it.

    Read from the stored config through the connector's own model, so the version shown is
    the one the next sync sends; a config that no longer validates (the sync says why) or a
    connector that is gone shows neither.
    """
    try:
        cls = get_connector(source.connector)
        config = cls.config_model.model_validate(source.config or {})
    except (UnknownConnectorError, ValidationError):
        return None, None
    try:
        return cls.api_version_for(config), cls.api_version_sunset(config)
    except Exception as exc:  # a plugin's bug must not take the source's read down
        log.warning(
            "connector %r can't name its API version (%s)", source.connector, type(exc).__name__
        )
        return None, None


def _unique_name(session: Session, name: str, own_id: int | None) -> None:
    other = session.scalar(select(DataSource.id).where(DataSource.name == name))
    if other is not None and other != own_id:
        raise Conflict(
            f"a data source named {name!r} already exists (id {other}); choose another name",
            field="name",
        )


def create_source(session: Session, data: dict[str, Any], actor: str) -> DataSource:
    cls = _connector(data["connector"], "connector")
    credentials = data.pop("credentials")
    data["config"] = _validate_config(cls, data["config"])
    token = _encrypt(cls, credentials) if credentials is not None else None
    _unique_name(session, data["name"], None)
    source = DataSource(
        **data,
        credentials_encrypted=token,
        state={},
        credentials_expire_at=None if credentials is None else credentials_expiry(credentials),
    )
    session.add(source)
    session.flush()
    changes = jsonable(data)
    if credentials is not None:
        changes["credentials"] = "changed"
    audit(session, actor, "create", "data_source", source.id, changes)
    return source


def register_source(
    session: Session, data: dict[str, Any], actor: str
) -> tuple[DataSource, str | None]:
    """`create_source`, and a `push` source created without a `secret` gets one generated: the
    answer's second half, shown to the admin this once (the pushing system signs with it)."""
    generated = None
    if data["connector"] == "push" and not (data.get("credentials") or {}).get("secret"):
        generated = token_urlsafe(32)
        data["credentials"] = {**(data.get("credentials") or {}), "secret": generated}
    return create_source(session, data, actor), generated


def stored_credentials(source: DataSource) -> dict[str, Any]:
    """The source's credentials, decrypted, for a form that replaces some of them and keeps the
    rest; never for showing. A key that can't open them is an InvalidInput on `credentials`."""
    try:
        return decrypt_credentials(source.credentials_encrypted)
    except SecretKeyError as exc:
        raise InvalidInput(
            f"the stored credentials can't be read ({exc}); enter all of them again",
            field="credentials",
        ) from None


def deletion_impact(session: Session, source_id: int) -> dict[str, int]:
    """What deleting the source with `cascade` removes with it, counted, to say so before."""
    get_source(session, source_id)
    of_source = Mapping.data_source_id == source_id
    mapped = select(Mapping.id).where(of_source)
    return {
        "mappings": count(session, Mapping, of_source),
        "observations": count(session, Observation, Observation.mapping_id.in_(mapped)),
        "sync_runs": count(session, SyncRun, SyncRun.data_source_id == source_id),
    }


def list_sources(session: Session, limit: int, offset: int) -> tuple[list[DataSource], int]:
    return paged(session, select(DataSource), [], DataSource.id, limit=limit, offset=offset)


def update_source(
    session: Session,
    background: BackgroundTasks,
    source_id: int,
    changes: dict[str, Any],
    actor: str,
) -> DataSource:
    require_not_null(
        changes,
        ["name", "connector", "config", "timezone", "schedule", "lookback_days", "enabled"],
    )
    source = get_source(session, source_id)
    connector = changes.pop("connector", source.connector)
    if connector != source.connector:
        raise InvalidInput(
            f"a data source's connector can't change (this one is `{source.connector}`): "
            "create a new data source for the other platform",
            field="connector",
        )
    if "config" in changes:
        changes["config"] = _validate_config(
            _connector(source.connector, "config"), changes["config"]
        )
    credentials_given = "credentials" in changes
    credentials = changes.pop("credentials", None)
    token = None
    if credentials is not None:
        token = _encrypt(_connector(source.connector, "credentials"), credentials)
    if "name" in changes:
        _unique_name(session, changes["name"], source.id)
    diff = apply_changes(source, changes)
    if credentials_given:
        source.credentials_encrypted = token
        diff["credentials"] = "changed"
        change = record(source, CredentialsStored(credentials), now=clock.utcnow())
        from app.notify.evaluate import source_health_changed

        source_health_changed(session, source, change)
    session.flush()
    audit(session, actor, "update", "data_source", source.id, diff)
    of_source = Mapping.data_source_id == source.id
    if REFETCH_FIELDS & diff.keys() and count(session, Mapping, of_source):
        session.execute(
            update(Mapping).where(of_source).values(backfill_pending=True),
            execution_options=months.MARKED,  # no figure moves
        )
        schedule_backfill(session, background, source)
    elif "enabled" in diff and source.enabled:
        # Mappings created or changed while the source was off have waited for this.
        if count(session, Mapping, of_source, Mapping.backfill_pending.is_(True)):
            schedule_backfill(session, background, source)
    return source


def delete_source(session: Session, source_id: int, cascade: bool, actor: str) -> None:
    get_source(session, source_id)
    mappings = count(session, Mapping, Mapping.data_source_id == source_id)
    if mappings and not cascade:
        raise Conflict(
            f"data source {source_id} still feeds {mappings} mapping(s); delete them first, or "
            "pass ?cascade=true to delete the source with its mappings, its sync runs and every "
            "observation those mappings wrote"
        )
    months.mark_source(session, source_id)  # its mappings' observations go with it
    session.execute(
        delete(DataSource).where(DataSource.id == source_id), execution_options=months.MARKED
    )
    audit(
        session,
        actor,
        "delete",
        "data_source",
        source_id,
        {"cascade": cascade, "mappings": mappings},
    )


def check_source(session: Session, source_id: int, actor: str) -> tuple[bool, str]:
    """The connector's cheap call; it may adopt the platform's own reporting timezone."""
    from app.sources.check import check_source as engine_check

    source = get_source(session, source_id)
    before = source.timezone
    ok, message = engine_check(session, source)
    if source.timezone != before:
        session.flush()
        audit(
            session,
            actor,
            "update",
            "data_source",
            source.id,
            {"timezone": [before, source.timezone]},
        )
    return ok, message


def resume_source(
    session: Session, background: BackgroundTasks, source_id: int, actor: str
) -> tuple[DataSource, HealthChange]:
    """Scheduled syncs take the source again, its failures counted from zero.

    Resuming a source that is not paused still resets the count (an admin who fixed it says
    so); mappings that waited while it was paused are backfilled now.
    """
    source = get_source(session, source_id)
    before = (source.paused_at, source.consecutive_failures)
    change = record(source, Resumed(clock.utcnow()), now=clock.utcnow())
    from app.notify.evaluate import source_health_changed

    source_health_changed(session, source, change)
    session.flush()
    audit(
        session,
        actor,
        "resume",
        "data_source",
        source.id,
        {
            "paused_at": [before[0].isoformat() if before[0] else None, None],
            "consecutive_failures": [before[1], 0],
            "health": [change.old, change.new],
        },
    )
    pending = count(
        session,
        Mapping,
        Mapping.data_source_id == source.id,
        Mapping.backfill_pending.is_(True),
    )
    if before[0] is not None and pending:
        schedule_backfill(session, background, source)
    return source, change


def _launch(session: Session, background: BackgroundTasks, run: SyncRun) -> None:
    from app.sync.engine import execute_run

    # The run executes in its own sessions once the response is out, but this request's
    # transaction would only commit after that: commit now so the runner sees the run.
    session.commit()
    background.add_task(execute_run, run.id)


def start_sync(
    session: Session,
    background: BackgroundTasks,
    source_id: int,
    window: tuple[date, date] | None,
    actor: str,
) -> SyncRun:
    from app.sync.engine import create_run

    source = get_source(session, source_id)
    if not source.enabled:
        raise Conflict(
            f"data source {source_id} is disabled; enable it (PATCH `enabled: true`) to sync it"
        )
    if source.paused_at is not None:
        raise Conflict(
            f"data source {source_id} is paused after {source.consecutive_failures} failed runs "
            "in a row; fix what its last runs' errors say, then resume it (POST "
            f"/api/v1/data-sources/{source_id}/resume, or `krsync sources resume "
            f"{source_id}`) to sync it again"
        )
    if window is not None:
        latest = today_in(source.timezone) + timedelta(days=1)
        if window[1] > latest:
            raise InvalidInput(
                f"`to` can't be after {latest.isoformat()}: the platform has no figures for "
                f"later days yet (days are counted in the source's timezone, {source.timezone})",
                field="to",
            )
    run = create_run(session, source, trigger="manual", window=window)
    audit(
        session,
        actor,
        "sync",
        "data_source",
        source.id,
        {"run_id": run.id, "window": [d.isoformat() for d in window] if window else None},
    )
    _launch(session, background, run)
    return run


def schedule_backfill(
    session: Session, background: BackgroundTasks, source: DataSource
) -> SyncRun | None:
    """Backfill the source's pending mappings now; a disabled or paused source waits until it
    is enabled or resumed."""
    from app.sync.engine import create_run

    if not source.enabled or source.paused_at is not None:
        return None
    run = create_run(session, source, trigger="backfill", window=None)
    _launch(session, background, run)
    return run


# --- mappings ---------------------------------------------------------------------------------


def get_mapping(session: Session, mapping_id: int) -> Mapping:
    return found(session.get(Mapping, mapping_id), f"mapping {mapping_id}")


def _ref(session: Session, model: Any, ref_id: int, what: str, field: str) -> Any:
    row = session.get(model, ref_id)
    if row is None:
        raise InvalidInput(f"{what} {ref_id} does not exist", field=field)
    return row


def _fit_role(kr: KeyResult, role: str) -> None:
    if kr.kind == "rollup":
        raise InvalidInput(
            f"key result {kr.id} is a roll-up: its progress comes from the objectives aligned to "
            "it, so it takes no mapping; map a `metric` or `milestone` key result instead",
            field="key_result_id",
        )
    if kr.aggregation == "ratio" and role == "value":
        raise InvalidInput(
            f"key result {kr.id} is a `ratio`: it takes a `numerator` and a `denominator` "
            "mapping; use role `numerator` or `denominator`",
            field="role",
        )
    if kr.aggregation != "ratio" and role != "value":
        raise InvalidInput(
            f"role `{role}` is for `ratio` key results, and key result {kr.id} aggregates by "
            f"`{kr.aggregation}`: use role `value` (or make the key result a `ratio`)",
            field="role",
        )


def _fit_query(
    kr: KeyResult, source: DataSource, fields: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The connector's verdict on metric, params, filters and the KR's aggregation."""
    try:
        cls = get_connector(source.connector)
    except UnknownConnectorError as exc:
        raise InvalidInput(
            f"data source {source.id} uses connector `{source.connector}`, which is not "
            f"installed (installed: {', '.join(exc.known) or 'none'})",
            field="data_source_id",
        ) from exc
    from app.sources.check import check_mapping_online

    aggregation = cast(Aggregation, kr.aggregation)
    try:
        params = cls.validate_query(
            fields["metric"], fields["params"], fields["filters"], aggregation
        )
        filters = tuple(Filter.model_validate(f) for f in fields["filters"])
        check_mapping_online(source, MetricQuery("new", fields["metric"], params, filters))
    except MappingError as exc:
        # A connector's filter or params model may raise ValueError: pydantic words it so.
        raise InvalidInput(f"{exc.part}: {reason(exc.message)}", field=exc.part) from exc
    except ConnectorError as exc:
        raise InvalidInput(exc.message, field="metric") from exc
    return params.model_dump(mode="json"), [f.model_dump(mode="json") for f in filters]


def _unique_slot(session: Session, kr_id: int, role: str, group: str, own_id: int | None) -> None:
    other = session.scalar(
        select(Mapping.id).where(
            Mapping.key_result_id == kr_id, Mapping.role == role, Mapping.group == group
        )
    )
    if other is not None and other != own_id:
        raise Conflict(
            f"key result {kr_id} already has a `{role}` mapping for group {group!r} "
            f"(mapping {other}): change that one, or give this one another `group`",
            field="group",
        )


def _no_checked_in_values(session: Session, kr_id: int) -> None:
    """SPEC 1: hand-typed figures are never added to synced ones, so a key result whose
    check-ins carry values takes no mapping until they are taken out; nothing is dropped
    behind anyone's back."""
    days = session.scalars(
        select(CheckIn.date)
        .where(CheckIn.key_result_id == kr_id, CheckIn.value.is_not(None))
        .distinct()
        .order_by(CheckIn.date)
    ).all()
    if not days:
        return
    listed = ", ".join(d.isoformat() for d in days[:5]) + (", …" if len(days) > 5 else "")
    raise Conflict(
        f"key result {kr_id} has check-ins with a value ({len(days)} day(s): {listed}); "
        "a source's figures would be added to them. Take the values out first "
        f"(PATCH /api/v1/key-results/{kr_id}/check-ins/{{id}} with `value: null` keeps "
        "their notes and confidence, DELETE removes them), or map another key result",
        field="key_result_id",
    )


def create_mapping(
    session: Session, background: BackgroundTasks, data: dict[str, Any], actor: str
) -> Mapping:
    kr: KeyResult = _ref(session, KeyResult, data["key_result_id"], "key result", "key_result_id")
    source: DataSource = _ref(
        session, DataSource, data["data_source_id"], "data source", "data_source_id"
    )
    _fit_role(kr, data["role"])
    _no_checked_in_values(session, kr.id)
    data["params"], data["filters"] = _fit_query(kr, source, data)
    _unique_slot(session, kr.id, data["role"], data["group"], None)
    mapping = Mapping(**data, backfill_pending=True)
    session.add(mapping)
    session.flush()
    audit(session, actor, "create", "mapping", mapping.id, data)
    schedule_backfill(session, background, source)
    return mapping


def list_mappings(
    session: Session,
    key_result_id: int | None,
    data_source_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[Mapping], int]:
    where = equal_to(
        (Mapping.key_result_id, key_result_id), (Mapping.data_source_id, data_source_id)
    )
    return paged(session, select(Mapping), where, Mapping.id, limit=limit, offset=offset)


def update_mapping(
    session: Session,
    background: BackgroundTasks,
    mapping_id: int,
    changes: dict[str, Any],
    actor: str,
) -> Mapping:
    require_not_null(changes, ["key_result_id", *MAPPING_FIELDS])
    mapping = get_mapping(session, mapping_id)
    if changes.pop("key_result_id", mapping.key_result_id) != mapping.key_result_id:
        raise InvalidInput(
            "a mapping can't move to another key result (its figures belong to this one): "
            "create a new mapping for the other key result",
            field="key_result_id",
        )
    merged = {name: changes.get(name, getattr(mapping, name)) for name in MAPPING_FIELDS}
    kr = session.get(KeyResult, mapping.key_result_id)
    assert kr is not None  # the foreign key cascades deletes
    source: DataSource = _ref(
        session, DataSource, merged["data_source_id"], "data source", "data_source_id"
    )
    _fit_role(kr, merged["role"])
    merged["params"], merged["filters"] = _fit_query(kr, source, merged)
    _unique_slot(session, kr.id, merged["role"], merged["group"], mapping.id)
    diff = apply_changes(mapping, merged)
    if diff:
        mapping.backfill_pending = True
    session.flush()
    audit(session, actor, "update", "mapping", mapping.id, diff)
    if diff:
        schedule_backfill(session, background, source)
    return mapping


def delete_mapping(session: Session, mapping_id: int, actor: str) -> None:
    mapping = get_mapping(session, mapping_id)
    observations = count(session, Observation, Observation.mapping_id == mapping.id)
    months.mark(session, [mapping.key_result_id])  # its observations go with it
    session.execute(
        delete(Mapping).where(Mapping.id == mapping_id), execution_options=months.MARKED
    )
    audit(session, actor, "delete", "mapping", mapping_id, {"observations": observations})


def preview_mapping(
    session: Session, mapping_id: int, start: date, end: date
) -> list[tuple[date, str, str, float]]:
    from app.sources.preview import preview_mapping as engine_preview

    return engine_preview(session, get_mapping(session, mapping_id), start, end)


def preview_draft_mapping(
    session: Session, data: dict[str, Any], start: date, end: date
) -> list[tuple[date, str, str, float]]:
    """The daily values a mapping not saved yet would give (the browser's mapping builder).

    ``data`` is a `MappingCreate` dump, judged as `create_mapping` judges it (key result, role,
    the connector's verdict on metric, params and filters), then fetched as `preview_mapping`
    fetches a saved one. The draft is never added to the session: nothing is written. Whether
    its (role, group) slot is free and whether check-ins hold values is left to the save.
    """
    from app.sources.preview import preview_values

    kr: KeyResult = _ref(session, KeyResult, data["key_result_id"], "key result", "key_result_id")
    source: DataSource = _ref(
        session, DataSource, data["data_source_id"], "data source", "data_source_id"
    )
    _fit_role(kr, data["role"])
    params, filters = _fit_query(kr, source, data)
    draft = Mapping(**{**data, "params": params, "filters": filters})
    return preview_values(source, kr.aggregation, draft, start, end)


def mapping_observations(session: Session, mapping_id: int) -> int:
    """How many daily values a mapping wrote: what deleting it takes away."""
    return count(session, Observation, Observation.mapping_id == mapping_id)


def describe_connector(key: str) -> tuple[dict[str, Any], bool] | None:
    """One item of `GET /api/v1/connectors`, and whether the platform names metrics beyond
    the listed catalogue (any GA4 metric, any Salesforce object); None when not installed."""
    try:
        cls = get_connector(key)
    except UnknownConnectorError:
        return None
    open_ended = getattr(cls.metric_spec, "__func__", None) is not getattr(
        Connector.metric_spec, "__func__", None
    )
    return cls.describe(), open_ended


def describe_metric(key: str, metric: str) -> dict[str, Any] | None:
    """A metric as the catalogue describes it, open-ended names included; None if unknown."""
    try:
        cls = get_connector(key)
    except UnknownConnectorError:
        return None
    spec = cls.metric_spec(metric)
    return None if spec is None else spec.describe() | {"settle_days": cls.settle_days_of(spec)}


def check_mappings_fit(session: Session, kr: KeyResult) -> None:
    """For the OKR service: refuse a key-result change that its mappings no longer fit."""
    mappings = session.scalars(
        select(Mapping).where(Mapping.key_result_id == kr.id).order_by(Mapping.id)
    ).all()
    for mapping in mappings:
        source = session.get(DataSource, mapping.data_source_id)
        assert source is not None
        try:
            _fit_role(kr, mapping.role)
            _fit_query(
                kr,
                source,
                {"metric": mapping.metric, "params": mapping.params, "filters": mapping.filters},
            )
        except InvalidInput as exc:
            raise InvalidInput(
                f"mapping {mapping.id} wouldn't fit the changed key result: {exc.message}; "
                "change or delete the mapping first",
                field="kind" if kr.kind == "rollup" else "aggregation",
            ) from exc
