"""Connectors, data sources, mappings, previews, manual syncs and the sync-run history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, status

from app.auth.deps import Admin, Viewer
from app.core.db import SessionDep
from app.core.schemas import ERROR_RESPONSES, IdPath, IdQuery, KnownQueryOnly, Limit, Offset, Page
from app.models import DataSource
from app.sources import service
from app.sources.schemas import (
    CheckRead,
    ConnectorRead,
    DataSourceCreate,
    DataSourceCreated,
    DataSourceRead,
    DataSourceUpdate,
    MappingCreate,
    MappingRead,
    MappingUpdate,
    PreviewRead,
    PreviewRequest,
    PreviewValue,
    RunStatus,
    SyncRequest,
    SyncRunRead,
)
from app.sync import history

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Cascade = Annotated[
    bool, Query(description="Also delete its mappings and the observations they wrote")
]


def _read(source: DataSource) -> DataSourceRead:
    """The source as the API shows it, with every notice an admin should act on."""
    read = DataSourceRead.model_validate(source)
    version, sunset = service.source_api_version(source)
    return read.model_copy(
        update={
            "notices": service.source_notices(source),
            "api_version": version,
            "api_version_sunset": sunset,
        }
    )


# --- connectors -------------------------------------------------------------------------------


@router.get("/connectors", tags=["connectors"], dependencies=[KnownQueryOnly])
def list_connectors(who: Viewer, limit: Limit = 50, offset: Offset = 0) -> Page[ConnectorRead]:
    """The installed connectors: config and credentials schemas, metric catalogue, filters."""
    items, total = service.list_connectors(limit, offset)
    return Page(items=[ConnectorRead.model_validate(i) for i in items], total=total)


# --- data sources -----------------------------------------------------------------------------


@router.post("/data-sources", status_code=status.HTTP_201_CREATED, tags=["data sources"])
def create_data_source(
    body: DataSourceCreate, session: SessionDep, who: Admin
) -> DataSourceCreated:
    """Register a data source; its credentials are stored encrypted and never returned.

    A `push` source created without a `secret` gets one generated, shown in `push_secret`
    this once (the pushing system signs with it), like an API key's secret.
    """
    source, generated = service.register_source(session, body.model_dump(), who.name)
    read = _read(source)
    return DataSourceCreated(**read.model_dump(), push_secret=generated)


@router.get("/data-sources", tags=["data sources"], dependencies=[KnownQueryOnly])
def list_data_sources(
    session: SessionDep, who: Admin, limit: Limit = 50, offset: Offset = 0
) -> Page[DataSourceRead]:
    """List data sources (without their credentials)."""
    rows, total = service.list_sources(session, limit, offset)
    return Page(items=[_read(r) for r in rows], total=total)


@router.get("/data-sources/{source_id}", tags=["data sources"])
def get_data_source(source_id: IdPath, session: SessionDep, who: Admin) -> DataSourceRead:
    """Read a data source (`credentials_set` says whether it holds credentials)."""
    return _read(service.get_source(session, source_id))


@router.patch("/data-sources/{source_id}", tags=["data sources"])
def update_data_source(
    source_id: IdPath,
    body: DataSourceUpdate,
    background: BackgroundTasks,
    session: SessionDep,
    who: Admin,
) -> DataSourceRead:
    """Change a data source; a new config or timezone re-fetches its mappings' history."""
    source = service.update_source(
        session, background, source_id, body.model_dump(exclude_unset=True), who.name
    )
    return _read(source)


@router.delete(
    "/data-sources/{source_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["data sources"]
)
def delete_data_source(
    source_id: IdPath, session: SessionDep, who: Admin, cascade: Cascade = False
) -> None:
    """Delete a data source; one that still feeds mappings needs `?cascade=true`."""
    service.delete_source(session, source_id, cascade, who.name)


@router.post("/data-sources/{source_id}/test", tags=["data sources"])
def check_data_source(source_id: IdPath, session: SessionDep, who: Admin) -> CheckRead:
    """Check that the source's credentials and ids work, with one cheap call."""
    ok, message = service.check_source(session, source_id, who.name)
    notices = service.source_notices(service.get_source(session, source_id))
    return CheckRead(ok=ok, message=message, notices=notices)


@router.post("/data-sources/{source_id}/resume", tags=["data sources"])
def resume_data_source(
    source_id: IdPath, background: BackgroundTasks, session: SessionDep, who: Admin
) -> DataSourceRead:
    """Resume a paused source: scheduled syncs take it again, its failures counted from zero."""
    source, _ = service.resume_source(session, background, source_id, who.name)
    return _read(source)


@router.post(
    "/data-sources/{source_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["sync runs"],
)
def sync_data_source(
    source_id: IdPath,
    background: BackgroundTasks,
    session: SessionDep,
    who: Admin,
    body: SyncRequest | None = None,
) -> SyncRunRead:
    """Start a sync now: the usual window, or the days `from`..`to`; poll the run it returns."""
    window = body.window if body is not None else None
    run = service.start_sync(session, background, source_id, window, who.name)
    return SyncRunRead.model_validate(run)


# --- mappings ---------------------------------------------------------------------------------


@router.post("/mappings", status_code=status.HTTP_201_CREATED, tags=["mappings"])
def create_mapping(
    body: MappingCreate, background: BackgroundTasks, session: SessionDep, who: Admin
) -> MappingRead:
    """Map a source's metric onto a key result; the cycle (and baseline) is backfilled."""
    mapping = service.create_mapping(session, background, body.model_dump(), who.name)
    return MappingRead.model_validate(mapping)


@router.get("/mappings", tags=["mappings"], dependencies=[KnownQueryOnly])
def list_mappings(
    session: SessionDep,
    who: Viewer,
    key_result_id: IdQuery = None,
    data_source_id: IdQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[MappingRead]:
    """List mappings, optionally of one key result or one data source."""
    rows, total = service.list_mappings(session, key_result_id, data_source_id, limit, offset)
    return Page(items=[MappingRead.model_validate(r) for r in rows], total=total)


@router.get("/mappings/{mapping_id}", tags=["mappings"])
def get_mapping(mapping_id: IdPath, session: SessionDep, who: Viewer) -> MappingRead:
    """Read a mapping."""
    return MappingRead.model_validate(service.get_mapping(session, mapping_id))


@router.patch("/mappings/{mapping_id}", tags=["mappings"])
def update_mapping(
    mapping_id: IdPath,
    body: MappingUpdate,
    background: BackgroundTasks,
    session: SessionDep,
    who: Admin,
) -> MappingRead:
    """Change a mapping; what it measures changed, so its history is fetched again."""
    mapping = service.update_mapping(
        session, background, mapping_id, body.model_dump(exclude_unset=True), who.name
    )
    return MappingRead.model_validate(mapping)


@router.delete("/mappings/{mapping_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["mappings"])
def delete_mapping(mapping_id: IdPath, session: SessionDep, who: Admin) -> None:
    """Delete a mapping and the observations it wrote."""
    service.delete_mapping(session, mapping_id, who.name)


@router.post("/mappings/{mapping_id}/preview", tags=["mappings"])
def preview_mapping(
    mapping_id: IdPath, body: PreviewRequest, session: SessionDep, who: Admin
) -> PreviewRead:
    """The daily values the source would give this mapping, fetched now and written nowhere."""
    rows = service.preview_mapping(session, mapping_id, body.from_, body.to)
    return PreviewRead(
        mapping_id=mapping_id,
        from_=body.from_,
        to=body.to,
        values=[PreviewValue(date=d, group=g, role=r, value=v) for d, g, r, v in rows],
    )


# --- sync runs --------------------------------------------------------------------------------


@router.get("/sync-runs", tags=["sync runs"], dependencies=[KnownQueryOnly])
def list_sync_runs(
    session: SessionDep,
    who: Viewer,
    data_source_id: IdQuery = None,
    status: Annotated[RunStatus | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[SyncRunRead]:
    """Sync-run history, newest first."""
    rows, total = history.list_runs(session, data_source_id, status, limit, offset)
    return Page(items=[SyncRunRead.model_validate(r) for r in rows], total=total)


@router.get("/sync-runs/{run_id}", tags=["sync runs"])
def get_sync_run(run_id: IdPath, session: SessionDep, who: Viewer) -> SyncRunRead:
    """Read one sync run: its window, outcome, counts, warnings and (redacted) error."""
    return SyncRunRead.model_validate(history.get_run(session, run_id))
