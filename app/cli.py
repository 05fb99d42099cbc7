"""The `krsync` command."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO, TypeVar, cast

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from app.core.settings import get_settings

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.orm import Session

    from app.models import ApiKey, DataSource, NotificationChannel, SyncRun
    from app.notify.dispatch import Report

#: Click's own help layout, not typer's rich panels: typer 0.29's panels print a value type after
#: every flag (`--help <bool>`, `--all <bool>`), as if a flag took a value, and squeeze the help
#: text into a narrow column at 80 columns. Click's layout names a value only where one is taken.
PLAIN_HELP = None
cli = typer.Typer(
    name="krsync",
    help="Keeps marketing key results honest and current.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=PLAIN_HELP,
)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True, rich_markup_mode=PLAIN_HELP)
sources_cli = typer.Typer(
    help="Inspect data sources.", no_args_is_help=True, rich_markup_mode=PLAIN_HELP
)
cli.add_typer(keys_cli, name="keys")
connectors_cli = typer.Typer(
    help="Inspect the installed connectors.", no_args_is_help=True, rich_markup_mode=PLAIN_HELP
)
cli.add_typer(sources_cli, name="sources")
cli.add_typer(connectors_cli, name="connectors")
notify_cli = typer.Typer(
    help="Deliver notifications.", no_args_is_help=True, rich_markup_mode=PLAIN_HELP
)
cli.add_typer(notify_cli, name="notify")
channels_cli = typer.Typer(
    help="Manage notification channels and read their delivery log.",
    no_args_is_help=True,
    rich_markup_mode=PLAIN_HELP,
)
cli.add_typer(channels_cli, name="channels")
# soft_wrap: an error stays on one line in a log, whatever the width of a terminal it lacks.
console = Console(stderr=True, soft_wrap=True)
#: Exit status of a command called wrongly (unknown source, bad window), as click uses.
USAGE_ERROR = 2


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line instead of a traceback."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _database_error(exc: Exception) -> NoReturn:
    url = get_settings().database_url
    safe = url.split("@")[-1] if "@" in url else url
    orig = getattr(exc, "orig", None)
    if "no such table" in str(orig) or type(orig).__name__ == "UndefinedTable":
        fail(f"the database at {safe} has no krsync tables yet: run `krsync migrate` first")
    fail(f"can't reach the database at {safe}: {type(exc).__name__}. Is it running?")


@contextmanager
def _database() -> Iterator[Session]:
    """A command's session; a database missing its tables or out of reach is one clear line."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.db import session_scope

    try:
        with session_scope() as session:
            yield session
    except SQLAlchemyError as exc:
        _database_error(exc)


def _table() -> Table:
    """A plain table: a rule under the header, no frame (two more columns for the cells)."""
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)


def _stdout() -> Console:
    """Tables go to stdout, as wide as the terminal or COLUMNS says; a log (cron, CI) gets them
    unwrapped rather than folded at 80."""
    sized = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(width=None if sized else 160, highlight=False)


@cli.command()
def migrate() -> None:
    """Migrate the database named by DATABASE_URL (default: the embedded SQLite file) to head."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.migrate import upgrade

    try:
        upgrade(get_settings().database_url)
    except SQLAlchemyError as exc:
        _database_error(exc)
    console.print("[green]database is at the latest schema[/]")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler/--no-scheduler",
            help="Sync every enabled source on its schedule (also KRSYNC_SCHEDULER_ENABLED)",
        ),
    ] = True,
) -> None:
    """Run the API and the scheduler with uvicorn."""
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from app.sync.scheduler import RUN_SCHEDULER_ENV

    settings = get_settings()
    if settings.is_sqlite:
        # The embedded default works with one command; PostgreSQL is migrated as a deploy step.
        from app.core.migrate import upgrade

        try:
            upgrade(settings.database_url)
        except SQLAlchemyError as exc:
            _database_error(exc)
        if workers > 1:
            console.print(
                "[yellow]warning:[/] several workers on SQLite each run a scheduler; the slot "
                "of a run keeps it from starting twice, but use PostgreSQL for more than one"
            )
    run_scheduler = scheduler and settings.scheduler_enabled
    # Read by the app's lifespan in every worker: only `serve` starts a scheduler.
    os.environ[RUN_SCHEDULER_ENV] = "1" if run_scheduler else "0"
    base = f"http://{host}:{port}"
    console.print(f"krsync API       {base}/api/v1", highlight=False)
    console.print(f"API docs         {base}/docs", highlight=False)
    console.print(f"dashboard        {base}/", highlight=False)
    console.print(f"scheduler        {'on' if run_scheduler else 'off'}", highlight=False)
    # With JSON logs, uvicorn's own text config would bypass krsync's formatter and redaction.
    json_logs = get_settings().log_format == "json"
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
        # The app believes forwarded headers from KRSYNC_TRUSTED_PROXIES only (app.core.proxies);
        # uvicorn's own default would trust 127.0.0.1, i.e. any local reverse proxy or client.
        proxy_headers=False,
    )


@connectors_cli.command("list")
def connectors_list() -> None:
    """List the installed connectors (plugins included) with their metrics."""
    from connectors.registry import load_connectors

    table = _table()
    table.add_column("key", no_wrap=True)
    table.add_column("name")
    table.add_column("category", no_wrap=True)
    # A list that wraps between names; a name longer than the column folds rather than hides.
    table.add_column("metrics", overflow="fold")
    for key, cls in sorted(load_connectors().items()):
        names = ", ".join(m.name for m in cls.metrics)
        table.add_row(key, Text(cls.name), cls.category, names or "(any, checked by the platform)")
    _stdout().print(table)


# --- demo -------------------------------------------------------------------------------------


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    data_dir: Annotated[
        Path,
        typer.Option(
            file_okay=False,
            help="Keeps the SQLite database (unless DATABASE_URL is set) and the admin key",
        ),
    ] = Path("."),
    serve_after: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Then run the API, the scheduler and dashboard"),
    ] = True,
) -> None:
    """Run the whole product here: demo OKRs for this quarter, fed by `demo` sources, served.

    Migrates the database (a SQLite file in --data-dir when DATABASE_URL is unset), seeds the
    workspace, backfills its sources, prints the admin key and serves like `krsync serve`.
    Run again, it reuses the workspace and the key.
    """
    from rich.markup import escape
    from rich.panel import Panel
    from sqlalchemy.exc import SQLAlchemyError

    from app import demo as workspace_of
    from app.core.clock import today_in
    from app.core.db import reset_engine, session_scope
    from app.core.errors import DomainError
    from app.core.migrate import upgrade

    if serve_after:
        # Before seeding and backfilling: a busy port found only then wastes the minute they take.
        _check_port_free(host, port)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (os.environ.get("DATABASE_URL") or os.environ.get("KRSYNC_DATABASE_URL")):
        os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'krsync.db'}"
    reset_engine()  # and the settings: the database may have changed just now
    key, key_file = workspace_of.admin_key(data_dir)
    secret, secret_file = workspace_of.secret_key(data_dir)
    # Read from the settings, by the API this process serves too: the bootstrap admin key, and
    # the key that encrypts credentials, so a `push` source (or any platform) can be tried.
    os.environ["KRSYNC_ADMIN_KEY"] = key
    os.environ["KRSYNC_SECRET_KEY"] = secret
    get_settings.cache_clear()
    try:
        upgrade(get_settings().database_url)
        with session_scope() as session:
            workspace = workspace_of.ensure_workspace(session, today_in("UTC"))
            runs = workspace_of.backfill_runs(session, workspace)
    except SQLAlchemyError as exc:
        _database_error(exc)
    except DomainError as exc:
        fail(exc.message)
    made = ", ".join(f"{n} {kind}(s)" for kind, n in workspace.created.items())
    console.print(
        f"seeded {workspace.cycle.name}: {made}"
        if made
        else f"reusing the workspace of {workspace.cycle.name}",
        highlight=False,
    )
    if runs:
        done = _execute_and_summarize(runs)
        for run_id, name in runs:
            run = done.get(run_id)
            if run is None or run.status != "succeeded":
                console.print(
                    f"[yellow]warning:[/] {name} did not sync; the scheduler tries again",
                    highlight=False,
                )
    base = f"http://{host}:{port}"
    where = f"kept in {key_file}" if key_file else "from KRSYNC_ADMIN_KEY"
    body = "\n".join(
        [
            f"dashboard  {base}/",
            f"API docs   {base}/docs",
            f"API        {base}/api/v1",
            f"admin key  [bold]{escape(key)}[/]",
            f"           {escape(where)}; sign in to the dashboard with it, and send it",
            "           as `Authorization: Bearer <key>` to the API (README: API tour)",
        ]
        + (
            [f"secret key kept in {escape(str(secret_file))}: it encrypts the credentials you give"]
            if secret_file
            else []
        )
    )
    title = f"krsync demo: {workspace.cycle.name}"
    _stdout().print(Panel(body, title=escape(title), expand=False), highlight=False)
    if serve_after:
        serve(host=host, port=port, workers=1, scheduler=True)


def _check_port_free(host: str, port: int) -> None:
    """Bind as uvicorn will (SO_REUSEADDR, so a port in TIME_WAIT is free), then let go."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        why = exc.strerror or str(exc)
        fail(f"can't listen on {host}:{port}: {why}; stop what uses it or pick another --port")


# --- sync -------------------------------------------------------------------------------------


def _day(value: str) -> date:
    """The API's strict `YYYY-MM-DD`; imported here, as `krsync --help` needs none of the API."""
    from app.core.schemas import iso_date

    try:
        return iso_date(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _day_option(flag: str, help: str) -> Any:
    """A `--from`/`--to`/`--as-of` option: one calendar day, as the API's dates are written."""
    return typer.Option(flag, parser=_day, metavar="YYYY-MM-DD", help=help)


@cli.command()
def sync(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            metavar="NAME",
            help="A data source's name; repeat for several (default: every enabled source)",
        ),
    ] = None,
    from_: Annotated[date | None, _day_option("--from", "First day to fetch (with --to)")] = None,
    to: Annotated[date | None, _day_option("--to", "Last day to fetch (with --from)")] = None,
    all_sources: Annotated[
        bool, typer.Option("--all", help="Every enabled source (what no --source means)")
    ] = False,
) -> None:
    """Sync now, for cron, a Kubernetes CronJob or Airflow; exit 1 if a source failed.

    Without --from/--to each source fetches its incremental window; with them, those days.
    """
    from sqlalchemy.exc import SQLAlchemyError

    if (from_ is None) != (to is None):
        fail(
            "--from and --to go together: give both, or neither for the incremental window",
            USAGE_ERROR,
        )
    window = (from_, to) if from_ is not None and to is not None else None
    if window is not None and window[0] > window[1]:
        fail(f"--from {window[0]} is after --to {window[1]}", USAGE_ERROR)
    if all_sources and source:
        fail("--all and --source exclude each other", USAGE_ERROR)
    try:
        runs = _create_runs(list(dict.fromkeys(source or [])), window)
    except SQLAlchemyError as exc:
        _database_error(exc)
    if not runs:
        console.print("no enabled data sources to sync")
        return
    done = _execute_and_summarize(runs)
    failed = 0
    for run_id, name in runs:
        run = done.get(run_id)
        if run is None or run.status not in ("succeeded", "partial"):
            failed += 1
        elif run.warnings:
            colour = "yellow" if run.status == "partial" else "dim"
            for warning in run.warnings:
                console.print(f"[{colour}]warning:[/] {name}: {warning}", highlight=False)
    if failed:
        fail(f"{failed} of {len(runs)} source(s) failed")


def _create_runs(names: Sequence[str], window: tuple[date, date] | None) -> list[tuple[int, str]]:
    """One `cli` run per source, committed before any executes; (run id, source name)."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import DataSource
    from app.sync.engine import create_run

    with session_scope() as session:
        if names:
            sources = _named_sources(session, names)
        else:
            sources = list(
                session.scalars(
                    select(DataSource)
                    # A paused source waits for `krsync sources resume`, as the scheduler does.
                    .where(DataSource.enabled.is_(True), DataSource.paused_at.is_(None))
                    .order_by(DataSource.name)
                )
            )
        if window is not None:
            _check_window(sources, window)
        runs = [
            (create_run(session, src, trigger="cli", window=window).id, src.name) for src in sources
        ]
    return runs


def _named_sources(session: Session, names: Sequence[str]) -> list[DataSource]:
    from sqlalchemy import select

    from app.models import DataSource

    found = {
        s.name: s for s in session.scalars(select(DataSource).where(DataSource.name.in_(names)))
    }
    unknown = [n for n in names if n not in found]
    if unknown:
        _unknown_source(session, unknown)
    disabled = [n for n in names if not found[n].enabled]
    if disabled:
        fail(
            f"disabled: {', '.join(disabled)}; enable a source (PATCH `enabled: true`) to sync it",
            USAGE_ERROR,
        )
    paused = [n for n in names if found[n].paused_at is not None]
    if paused:
        fail(
            f"paused after failed runs in a row: {', '.join(paused)}; fix what their last runs' "
            "errors say, then `krsync sources resume NAME` to sync them again",
            USAGE_ERROR,
        )
    return [found[n] for n in names]


def _unknown_source(session: Session, unknown: Sequence[str]) -> NoReturn:
    from sqlalchemy import select

    from app.models import DataSource

    known = list(session.scalars(select(DataSource.name).order_by(DataSource.name).limit(51)))
    listed = ", ".join(known[:50]) + (", …" if len(known) > 50 else "")
    what = "unknown data source" + ("s " if len(unknown) > 1 else " ")
    names = ", ".join(repr(n) for n in unknown)
    if not known:
        fail(f"{what}{names}: there are no data sources yet", USAGE_ERROR)
    fail(f"{what}{names}; known sources: {listed}", USAGE_ERROR)


def _check_window(sources: Sequence[DataSource], window: tuple[date, date]) -> None:
    """The same rule as the API's: a platform has no figures for days that haven't come yet."""
    from app.core.clock import today_in

    for src in sources:
        try:
            latest = today_in(src.timezone) + timedelta(days=1)
        except (LookupError, ValueError):
            continue  # the run itself will say what is wrong with the source
        if window[1] > latest:
            fail(
                f"--to {window[1]} is after {latest} for {src.name}: the platform has no figures "
                f"for later days yet (days are counted in {src.timezone})",
                USAGE_ERROR,
            )


def _execute_and_summarize(runs: Sequence[tuple[int, str]]) -> dict[int, SyncRun]:
    """Execute the runs with a spinner each, then print their table: the runs as they ended."""
    from sqlalchemy.exc import SQLAlchemyError

    seconds = _execute_with_progress(runs)
    try:
        done = _load_runs([run_id for run_id, _ in runs])
    except SQLAlchemyError as exc:
        _database_error(exc)
    _print_summary(runs, done, seconds)
    return done


def _execute_with_progress(runs: Sequence[tuple[int, str]]) -> dict[int, float]:
    """All sources at once, a spinner each; the wall-clock seconds each one took."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )
    from sqlalchemy.exc import SQLAlchemyError

    from app.sync.engine import execute_run_async
    from app.sync.errors import classify

    seconds: dict[int, float] = {}
    progress = Progress(
        SpinnerColumn(finished_text=" "),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a log gets the summary table, not spinner frames
    )

    async def one(run_id: int, task: TaskID, overall: TaskID) -> None:
        started = time.monotonic()
        try:
            await execute_run_async(run_id)
        finally:
            seconds[run_id] = time.monotonic() - started
            try:
                status = await asyncio.to_thread(_status_of, run_id)
            except SQLAlchemyError:
                status = "?"  # said once the bar is gone, by the caller
            progress.update(task, completed=1, status=status)
            progress.advance(overall)

    async def every() -> list[BaseException | None]:
        overall = progress.add_task("all sources", total=len(runs), status="")
        tasks = [
            one(run_id, progress.add_task(name, total=1, status="syncing"), overall)
            for run_id, name in runs
        ]
        return await asyncio.gather(*tasks, return_exceptions=True)

    with progress, _logs_above(progress):
        outcomes = asyncio.run(every())
    for outcome in outcomes:
        if isinstance(outcome, SQLAlchemyError):
            _database_error(outcome)
        if isinstance(outcome, Exception):
            fail(classify(outcome))
    return seconds


@contextmanager
def _logs_above(progress: Progress) -> Iterator[None]:
    """While the bars are live, log lines print above them instead of through them.

    krsync's log handler holds the stream it was made with; rich redirects only `sys.stderr`
    itself, so a connector's warning would otherwise be written over the bars being redrawn.
    """
    from rich.file_proxy import FileProxy

    from app.core.logging import log_stream

    if progress.disable:
        yield
        return
    with log_stream(lambda stream: cast("TextIO", FileProxy(progress.console, stream))):
        yield


def _status_of(run_id: int) -> str:
    from app.core.db import get_sessionmaker
    from app.models import SyncRun

    with get_sessionmaker()() as session:
        run = session.get(SyncRun, run_id)
        return run.status if run is not None else "deleted"


def _load_runs(run_ids: Sequence[int]) -> dict[int, SyncRun]:
    from sqlalchemy import select

    from app.core.db import get_sessionmaker
    from app.models import SyncRun

    with get_sessionmaker()() as session:
        return {r.id: r for r in session.scalars(select(SyncRun).where(SyncRun.id.in_(run_ids)))}


_STATUS_STYLE = {"succeeded": "green", "partial": "yellow", "failed": "red"}


def _window(start: date | None, end: date | None) -> str:
    if start is None or end is None:
        return "—"
    return f"{start} → {end.isoformat()[5:] if end.year == start.year else end}"


#: Narrower than this, a run's error gets a line of its own under the table: squeezed into the
#: table's last column at 80 columns it would fold to a few letters a line.
ERRORS_IN_TABLE_WIDTH = 120


def _print_summary(
    runs: Sequence[tuple[int, str]], done: dict[int, SyncRun], seconds: dict[int, float]
) -> None:
    out = _stdout()
    errors_inline = out.width >= ERRORS_IN_TABLE_WIDTH
    table = _table()
    table.add_column("source", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("window", no_wrap=True)
    table.add_column("calls", justify="right")  # to the platform's API
    table.add_column("written", justify="right")  # observations
    table.add_column("secs", justify="right")
    if errors_inline:
        table.add_column("error", overflow="fold", min_width=10)
    notes: list[tuple[str, str]] = []
    cells: list[str | Text]
    for run_id, name in runs:
        run = done.get(run_id)
        if run is None:
            cells = [Text(name), "deleted", "", "", "", ""]
            note = "the source was deleted meanwhile"
        else:
            note = (run.error or "").splitlines()[0] if run.error else ""
            if not note and run.status == "partial":
                note = f"{len(run.warnings)} warning(s), below"
            style = _STATUS_STYLE.get(run.status, "dim")
            cells = [
                Text(name),
                f"[{style}]{run.status}[/]",
                _window(run.window_from, run.window_to),
                str(run.api_calls),
                str(run.observations_written),
                f"{seconds.get(run_id, 0.0):.1f}",
            ]
        if errors_inline:
            table.add_row(*cells, Text(note))
        else:
            table.add_row(*cells)
            if note:
                notes.append((name, note))
    out.print(table)
    for name, note in notes:
        out.print(Text(f"{name}: {note}"), soft_wrap=True)


# --- audit ------------------------------------------------------------------------------------


@cli.command()
def audit(
    entity: Annotated[
        str | None,
        typer.Option(help="What was written: cycle, objective, key_result, check_in, …"),
    ] = None,
    entity_id: Annotated[
        int | None, typer.Option("--entity-id", min=1, help="Its id (with --entity)")
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who wrote it: key:<name>, bootstrap-admin, cli, demo")
    ] = None,
    from_: Annotated[date | None, _day_option("--from", "First day (UTC), inclusive")] = None,
    to: Annotated[date | None, _day_option("--to", "Last day (UTC), inclusive")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="How many of the newest to skip")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"items": [...], "total": n} as the API does')
    ] = False,
) -> None:
    """Who changed what and when, newest first: the audit trail of `GET /api/v1/audit-events`."""
    import json

    from app.auth.schemas import AuditEventRead
    from app.auth.service import AUDIT_ENTITIES, AuditFilter, list_audit_events
    from app.core.errors import DomainError

    if entity is not None and entity not in AUDIT_ENTITIES:
        fail(f"unknown --entity {entity!r}: use one of {', '.join(AUDIT_ENTITIES)}", USAGE_ERROR)
    where = AuditFilter(entity, entity_id, actor, from_, to)  # type: ignore[arg-type]
    try:
        with _database() as session:
            rows, total = list_audit_events(session, where, limit, offset)
            events = [AuditEventRead.model_validate(r) for r in rows]
    except DomainError as exc:
        fail(exc.message.replace("'to'", "--to").replace("'from'", "--from"), USAGE_ERROR)
    if as_json:
        items = [e.model_dump(mode="json") for e in events]
        typer.echo(json.dumps({"items": items, "total": total}, ensure_ascii=False))
        return
    if not events:
        console.print("no audit events match" if total else "no audit events yet")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("actor", overflow="fold")
    table.add_column("action", no_wrap=True)
    table.add_column("entity", no_wrap=True)
    table.add_column("id", justify="right")
    table.add_column("changes", overflow="fold", min_width=20)
    for event in events:
        # Text, not markup: a note or a name saying "[red]" is shown as typed.
        cells = (
            event.at.strftime("%Y-%m-%d %H:%M:%S"),
            event.actor,
            event.action,
            event.entity,
            "" if event.entity_id is None else str(event.entity_id),
            json.dumps(event.changes, ensure_ascii=False, separators=(", ", ": ")),
        )
        table.add_row(*(Text(cell) for cell in cells))
    _stdout().print(table)
    if total > offset + len(events):
        console.print(
            f"{len(events)} of {total} shown (newest first); --offset {offset + len(events)} "
            "for the next ones",
            highlight=False,
        )


# --- closing a cycle --------------------------------------------------------------------------


@cli.command()
def review(
    cycle: Annotated[str, typer.Argument(metavar="CYCLE", help="The cycle's id or name")],
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="md|csv",
            help="Write the whole review to stdout as Markdown or CSV instead of the findings",
        ),
    ] = None,
    as_of: Annotated[date | None, _day_option("--as-of", "Figures as of this day (today)")] = None,
) -> None:
    """The quality findings of a cycle's objectives, each saying what to change (or the whole
    review with --format): `GET /api/v1/cycles/{id}/review`."""
    from sqlalchemy import select

    from app.core import clock
    from app.models import Cycle
    from app.review import export
    from app.review.service import cycle_review

    if format not in (None, "md", "csv"):
        fail(f"unknown --format {format!r}: use md or csv", USAGE_ERROR)
    day = as_of or clock.today()
    with _database() as session:
        found = None
        if cycle.isascii() and cycle.isdigit() and int(cycle) < 2**31:
            found = session.get(Cycle, int(cycle))
        if found is None:
            found = session.scalar(select(Cycle).where(Cycle.name == cycle).limit(1))
        if found is None:
            names = session.scalars(select(Cycle.name).order_by(Cycle.start_date.desc()))
            known = ", ".join(list(names)[:10]) or "none yet"
            fail(f"no cycle {cycle!r} (cycles: {known})", USAGE_ERROR)
        result = cycle_review(session, found.id, day)
    if format == "md":
        sys.stdout.write(export.to_markdown(result))
        return
    if format == "csv":
        sys.stdout.write(export.to_csv(result))
        return
    titles = {o.id: o.title for o in result.objectives}
    krs = {kr.id: kr.title for o in result.objectives for kr in o.key_results}
    out = _stdout()
    if not result.findings:
        out.print(f"{result.cycle.name}: no findings, every objective follows the rules")
        return
    table = _table()
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("objective", overflow="fold")
    table.add_column("key result", overflow="fold")
    table.add_column("what to change", overflow="fold", min_width=30)
    for f in result.findings:
        cells = (
            f.severity,
            f.rule,
            titles.get(f.objective_id, str(f.objective_id)),
            krs.get(f.key_result_id, "") if f.key_result_id is not None else "",
            f.message,
        )
        table.add_row(*(Text(cell) for cell in cells))
    out.print(table)
    errors = sum(1 for f in result.findings if f.severity == "error")
    out.print(
        f"{result.cycle.name}: {len(result.findings)} finding(s), {errors} error(s), "
        f"{len(result.findings) - errors} warning(s)"
    )


# --- sources ----------------------------------------------------------------------------------


@sources_cli.command("list")
def sources_list() -> None:
    """List the data sources: schedule, health (with failed runs in a row), last run, last
    success, and why each unhealthy source is so."""
    from app.core import clock
    from app.sync import history
    from app.sync.source_health import health_of, reason_of

    with _database() as session:
        rows = history.sources_with_last_run(session)
    if not rows:
        console.print("no data sources yet (create one with POST /api/v1/data-sources)")
        return
    now = clock.utcnow()
    # At 80 columns names stay whole; the schedule and the run wrap at their spaces.
    table = _table()
    table.add_column("name", no_wrap=True)
    table.add_column("connector", no_wrap=True)
    # One column for both: a disabled source's health matters less than that it is off.
    table.add_column("health")
    # A timezone is one word: whole, or it names another place.
    table.add_column("schedule", min_width=max(len(src.timezone) for src, _ in rows))
    table.add_column("last run (UTC)")
    unhealthy = []
    for src, run in rows:
        health = health_of(src, now)
        if health != "healthy":
            unhealthy.append(src)
        table.add_row(
            Text(src.name),
            src.connector,
            _health(health, src.consecutive_failures or 0)
            if src.enabled
            else Text("disabled", style="dim"),
            f"{src.schedule} {src.timezone}",
            _last_run(run, src.last_success_at),
        )
    _stdout().print(table)
    for src in unhealthy:
        off = "" if src.enabled else " (disabled)"
        why = reason_of(src, now)
        console.print(Text.assemble((src.name, "bold"), f"{off}: {health_of(src, now)}: {why}"))


_HEALTH_STYLE = {
    "healthy": "green",
    "degraded": "yellow",
    "failing": "red",
    "needs_reauth": "bold red",
    "paused": "bold red",
}


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "never"


def _health(health: str, failures: int) -> Text:
    """The health, and how many runs in a row failed when any did: `failing (3)`."""
    text = Text(health, style=_HEALTH_STYLE.get(health, ""))
    if failures:
        text.append(f" ({failures})")
    return text


def _last_run(run: SyncRun | None, last_success: datetime | None) -> Text:
    """How the last run went, and when the source last synced if that was not it."""
    if run is None:
        return Text("never")
    style = _STATUS_STYLE.get(run.status, "dim")
    text = Text.assemble((run.status, style), f" ({run.trigger}, {_when(run.started_at)})")
    if run.status != "succeeded":
        text.append(f"; last success {_when(last_success)}", style="dim")
    return text


@sources_cli.command("resume")
def sources_resume(
    source: Annotated[str, typer.Argument(metavar="ID", help="The data source's id or name")],
) -> None:
    """Resume a paused source: scheduled syncs take it again, its failures counted from zero."""
    from fastapi import BackgroundTasks

    from app.sources.service import resume_source

    background = BackgroundTasks()
    with _database() as session:
        src = _source_by_id_or_name(session, source)
        resumed, change = resume_source(session, background, src.id, actor="cli")
        name = resumed.name
    if change.old == "paused":
        _stdout().print(f"[green]resumed[/] {name}: scheduled syncs take it again")
    else:
        _stdout().print(f"{name} was not paused; its failed runs are counted from zero again")
    # Mappings that waited while it was paused: their backfill runs here, not in a server.
    for task in background.tasks:
        task.func(*task.args, **task.kwargs)


_Row = TypeVar("_Row")


def _by_id(session: Session, model: type[_Row], text: str) -> _Row | None:
    """The row whose id ``text`` is, when it is one; else the caller looks for it by name."""
    if text.isascii() and text.isdigit() and int(text) < 2**31:
        return session.get(model, int(text))
    return None


def _source_by_id_or_name(session: Session, id_or_name: str) -> DataSource:
    from app.models import DataSource

    by_id = _by_id(session, DataSource, id_or_name)
    if by_id is not None:
        return by_id
    return _source_named(session, id_or_name)


@sources_cli.command("check")
def sources_check(
    name: Annotated[str, typer.Argument(help="The data source's name")],
) -> None:
    """Prove a source's credentials and ids work with one cheap call; exit 1 if they don't."""

    from app.sources.service import check_source

    with _database() as session:
        src = _source_named(session, name)
        ok, message = check_source(session, src.id, actor="cli")
    if not ok:
        fail(f"{name}: {message}")
    _stdout().print(f"[green]ok[/] {name}: {message}")


def _source_named(session: Session, name: str) -> DataSource:
    from sqlalchemy import select

    from app.models import DataSource

    src = session.scalar(select(DataSource).where(DataSource.name == name))
    if src is None:
        _unknown_source(session, [name])
    return src


@notify_cli.command("run")
def notify_run(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=200, help="Requests in flight at once (KRSYNC_NOTIFY_CONCURRENCY)"),
    ] = None,
) -> None:
    """Deliver every notification that is due now, then exit (for an external scheduler).

    Deliveries whose next attempt is later stay for a later run; the exit status is 0 unless
    the database can't be reached.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from app.notify.dispatch import dispatch_due

    started = time.monotonic()
    shown = [started]

    def progress(report: Report) -> None:
        now = time.monotonic()
        if now - shown[0] >= 2:
            shown[0] = now
            console.print(f"{_notify_line(report, now - started)}", highlight=False)

    try:
        report = dispatch_due(concurrency=concurrency, on_progress=progress)
    except SQLAlchemyError as exc:
        _database_error(exc)
    console.print(_notify_line(report, time.monotonic() - started), highlight=False)


@notify_cli.command("evaluate")
def notify_evaluate() -> None:
    """Evaluate the events time moves, then exit (for an external scheduler; run it hourly).

    Key results' statuses (expected progress moves with the calendar), check-in reminders,
    credentials near their end, API versions near retirement, and on Monday from 09:00 in
    KRSYNC_TIMEZONE the weekly digest. What was announced is recorded: running it twice
    announces nothing twice. `krsync notify run` then delivers.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from app.notify.evaluate import evaluate_all

    try:
        report = evaluate_all()
    except SQLAlchemyError as exc:
        _database_error(exc)
    s = report.statuses
    console.print(
        f"events: {s.evaluated} key results evaluated in {report.seconds * 1000:.0f} ms, "
        f"{s.changed} status change(s) ({s.held} held as flapping), {s.done} done, "
        f"{report.reminders} reminder(s), {report.sources} source notice(s), "
        f"weekly digest {'sent' if report.digest else 'not due or already sent'}",
        highlight=False,
    )


def _notify_line(report: Report, seconds: float) -> str:
    rate = report.attempts / seconds if seconds > 0 else 0.0
    return (
        f"notifications: {report.delivered} delivered, {report.retrying} to retry later, "
        f"{report.failed} failed ({report.attempts} attempts, {rate:.0f}/s)"
    )


# --- notification channels -----------------------------------------------------------------


def _channel_by_id_or_name(session: Session, id_or_name: str) -> NotificationChannel:
    from sqlalchemy import select

    from app.models import NotificationChannel

    by_id = _by_id(session, NotificationChannel, id_or_name)
    if by_id is not None:
        return by_id
    named = session.scalar(
        select(NotificationChannel).where(NotificationChannel.name == id_or_name)
    )
    if named is None:
        fail(
            f"no notification channel is named {id_or_name!r} or has that id "
            "(`krsync channels list`)",
            USAGE_ERROR,
        )
    return named


def _refused(exc: Exception) -> NoReturn:
    """A refusal in the API's words, on one line; never the value (a URL is a secret)."""
    from pydantic import ValidationError

    from app.core.errors import DomainError, reason

    if isinstance(exc, ValidationError):
        err = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        fail(f"{where}: {reason(err['msg'])}", USAGE_ERROR)
    if isinstance(exc, DomainError):
        fail(f"{exc.field}: {exc.message}" if exc.field else exc.message, USAGE_ERROR)
    raise exc


@channels_cli.command("list")
def channels_list() -> None:
    """List the channels: kind, events, scope, enabled, whether a URL is set (never the URL)."""

    from app.notify import service
    from app.notify.events import EVENT_TYPES, SCOPE_KEYS

    with _database() as session:
        rows, _ = service.list_channels(session, 10_000, 0)
        channels = [service.channel_read(r) for r in rows]
    if not channels:
        console.print("no notification channels yet (add one with `krsync channels add`)")
        return
    table = _table()
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("target")
    table.add_column("events")
    table.add_column("scope")
    table.add_column("enabled", no_wrap=True)
    for c in channels:
        if "to" in c.config:
            target = ", ".join(c.config["to"])
        else:
            target = "URL set" if c.config.get("url_set") else "URL not set"
        events = "all" if len(c.events) == len(EVENT_TYPES) else ", ".join(c.events)
        given = c.scope or {}
        scope = ", ".join(f"{k}={given[k]}" for k in SCOPE_KEYS if k in given) or "everything"
        table.add_row(
            str(c.id),
            Text(c.name),
            c.kind,
            Text(target),
            events,
            Text(scope),
            "yes" if c.enabled else "[dim]no[/]",
        )
    _stdout().print(table)


@channels_cli.command("add")
def channels_add(
    name: Annotated[
        str, typer.Option(metavar="NAME", help="What the channel is called, e.g. '#okr-alerts'")
    ],
    kind: Annotated[str, typer.Option(metavar="KIND", help="slack, teams, email or webhook")],
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The webhook URL (slack, teams, webhook); a secret: prefer --url-file",
        ),
    ] = None,
    url_file: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH", help="A file holding the URL, so it stays out of the shell's history"
        ),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(metavar="ADDR", help="An email address (repeat for each; email only)"),
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option(metavar="TYPE", help="An event type it wants (repeat; default all)"),
    ] = None,
    team: Annotated[
        str | None, typer.Option(metavar="TEAM", help="Only events about this team")
    ] = None,
    owner: Annotated[
        str | None, typer.Option(metavar="OWNER", help="Only events about this owner")
    ] = None,
    cycle_id: Annotated[
        int | None, typer.Option(metavar="ID", help="Only events about this cycle")
    ] = None,
    objective_id: Annotated[
        int | None, typer.Option(metavar="ID", help="Only events about this objective")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off")] = False,
) -> None:
    """Add a notification channel. A webhook channel's signing secret is printed this once."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.db import session_scope
    from app.core.errors import DomainError
    from app.notify import service
    from app.notify.schemas import ChannelCreate

    if url is not None and url_file is not None:
        fail("give the URL with --url or --url-file, not both", USAGE_ERROR)
    if url_file is not None:
        try:
            url = url_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"can't read --url-file {url_file}: {type(exc).__name__}", USAGE_ERROR)
    config = {"url": url, "to": to or None}
    scope = {"cycle_id": cycle_id, "objective_id": objective_id, "team": team, "owner": owner}
    body: dict[str, object] = {
        "name": name,
        "kind": kind,
        "config": {k: v for k, v in config.items() if v is not None},
        "scope": scope,
        "enabled": not disabled,
    }
    if event:
        body["events"] = event
    try:
        data = ChannelCreate.model_validate(body).model_dump()
        with session_scope() as session:
            channel, secret = service.create_channel(session, data, actor="cli")
            cid, cname = channel.id, channel.name
    except (ValidationError, DomainError) as exc:
        _refused(exc)
    except SQLAlchemyError as exc:
        _database_error(exc)
    console.print(f"created channel {cid} ({cname})", highlight=False)
    if secret is not None:
        typer.echo(secret)
        console.print(
            "the webhook's signing secret, shown this once: the receiver verifies each "
            "delivery's webhook-signature with it"
        )


@channels_cli.command("test")
def channels_test(
    channel: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="The channel's id or name")],
) -> None:
    """Send a test message to the channel now; exit 1 if it was not delivered."""

    from app.notify import service

    with _database() as session:
        row = _channel_by_id_or_name(session, channel.strip())
        outcome, message = service.send_test(session, row.id)
    if not outcome.ok:
        fail(message)
    _stdout().print(f"[green]ok[/] {message}")


@channels_cli.command("remove")
def channels_remove(
    channel: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="The channel's id or name")],
) -> None:
    """Delete a channel and its deliveries, sent or still pending."""

    from app.notify import service

    with _database() as session:
        row = _channel_by_id_or_name(session, channel.strip())
        cid, cname = row.id, row.name
        service.delete_channel(session, cid, actor="cli")
    console.print(f"removed channel {cid} ({cname})", highlight=False)


@channels_cli.command("deliveries")
def channels_deliveries(
    channel: Annotated[
        str | None, typer.Option(metavar="ID_OR_NAME", help="Only this channel's deliveries")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            metavar="STATUS", help="Only deliveries that are pending, delivered or failed"
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 50,
) -> None:
    """The delivery log, newest first: event, channel, status, the receiver's answer, attempts,
    the next attempt and the last error (never a URL)."""

    from app.notify import service

    if status is not None and status not in ("pending", "delivered", "failed"):
        fail(f"unknown status {status!r}: use pending, delivered or failed", USAGE_ERROR)
    with _database() as session:
        cid = _channel_by_id_or_name(session, channel.strip()).id if channel else None
        items, total = service.list_deliveries(session, cid, status, limit, 0)
        rows, _ = service.list_channels(session, 10_000, 0)
        names = {r.id: r.name for r in rows}
    if not items:
        console.print("no deliveries" + (" match" if channel or status else " yet"))
        return
    table = _table()
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("channel")
    table.add_column("status", no_wrap=True)
    table.add_column("answer", justify="right", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("next attempt (UTC)")
    table.add_column("last error")
    style = {"delivered": "green", "pending": "yellow", "failed": "red"}
    for d in items:
        table.add_row(
            str(d.id),
            d.event_type,
            Text(names.get(d.channel_id, str(d.channel_id))),
            Text(d.status, style=style.get(d.status, "")),
            "" if d.response_status is None else str(d.response_status),
            str(d.attempts),
            _when(d.next_attempt_at) if d.next_attempt_at else "",
            Text(d.last_error or ""),
        )
    _stdout().print(table)
    if total > len(items):
        console.print(f"the newest {len(items)} of {total} shown (--limit for more)")


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name that says who uses the key")],
    role: Annotated[str, typer.Option(help="viewer, editor or admin")] = "viewer",
) -> None:
    """Create an API key and print its secret (shown this once)."""
    from pydantic import ValidationError

    from app.auth.schemas import ApiKeyCreate
    from app.auth.service import create_api_key
    from app.core.errors import reason

    if role not in ("viewer", "editor", "admin"):
        fail(f"unknown role {role!r}: use viewer, editor or admin", USAGE_ERROR)
    try:
        # The API's own rules for a key: a blank name would leave `keys list` unreadable.
        body = ApiKeyCreate.model_validate({"name": name, "role": role})
    except ValidationError as exc:
        err = exc.errors(include_input=False)[0]
        fail(f"{'.'.join(str(p) for p in err['loc'])}: {reason(err['msg'])}", USAGE_ERROR)
    with _database() as session:
        _, secret = create_api_key(session, name=body.name, role=body.role, actor="cli")
    typer.echo(secret)


@keys_cli.command("list")
def keys_list() -> None:
    """List the API keys: name, role, when made, last used and revoked (never their secrets)."""
    from sqlalchemy import select

    from app.models import ApiKey

    with _database() as session:
        keys = list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
    if not keys:
        console.print("no API keys yet (create one with `krsync keys create NAME`)")
        return
    table = _table()
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("role", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("last used (UTC)")
    table.add_column("revoked", no_wrap=True)
    for key in keys:
        revoked = key.revoked_at.date().isoformat() if key.revoked_at else ""
        table.add_row(
            str(key.id),
            Text(key.name, style="dim" if key.revoked_at else ""),
            key.role,
            key.created_at.date().isoformat(),
            _when(key.last_used_at),
            f"[red]{revoked}[/]" if revoked else "",
        )
    _stdout().print(table)


@keys_cli.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The key's name, or its id")],
) -> None:
    """Revoke an API key; requests with it are refused from now on."""

    from app.auth.service import revoke_api_key

    with _database() as session:
        row = _api_key_named(session, key.strip())
        if row.revoked_at is not None:
            console.print(
                f"key {row.id} ({row.name}) was already revoked on {_when(row.revoked_at)} UTC",
                highlight=False,
            )
            return
        revoke_api_key(session, row.id, actor="cli")
        console.print(f"revoked key {row.id} ({row.name})", highlight=False)


def _api_key_named(session: Session, name_or_id: str) -> ApiKey:
    """By id when it is one; else the one live key of that name (names need not be unique)."""
    from sqlalchemy import select

    from app.models import ApiKey

    by_id = _by_id(session, ApiKey, name_or_id)
    if by_id is not None:
        return by_id
    named = list(session.scalars(select(ApiKey).where(ApiKey.name == name_or_id)))
    live = [k for k in named if k.revoked_at is None]
    if len(live) == 1 or (named and not live):
        return (live or named)[-1]
    if live:
        ids = ", ".join(str(k.id) for k in live)
        fail(
            f"{len(live)} live keys are named {name_or_id!r} (ids {ids}): give the id", USAGE_ERROR
        )
    fail(f"no API key is named {name_or_id!r} or has that id (`krsync keys list`)", USAGE_ERROR)


@keys_cli.command("generate-secret")
def keys_generate_secret() -> None:
    """Print a new Fernet key for KRSYNC_SECRET_KEY (put it first to rotate keys)."""
    from app.core.secrets import SecretBox

    typer.echo(SecretBox.generate_key())
    console.print(
        "set it as KRSYNC_SECRET_KEY and keep it safe: stored credentials can't be read without it"
    )


def main() -> None:
    from pydantic import ValidationError

    from app.core.errors import reason
    from app.core.logging import configure_logging

    try:
        configure_logging(get_settings())
    except ValidationError as exc:
        # Field and reason only: the value may be a secret.
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            console.print(f"[bold red]error:[/] {where}: {reason(err['msg'])}", highlight=False)
        sys.exit(USAGE_ERROR)
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
