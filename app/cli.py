"""The `krsync` command."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from app.core.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.models import DataSource, SyncRun

cli = typer.Typer(
    name="krsync",
    help="Keeps marketing key results honest and current.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
sources_cli = typer.Typer(help="Inspect data sources.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
connectors_cli = typer.Typer(help="Inspect the installed connectors.", no_args_is_help=True)
cli.add_typer(sources_cli, name="sources")
cli.add_typer(connectors_cli, name="connectors")
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


def _stdout() -> Console:
    """Tables go to stdout; a log (cron, CI) gets them unwrapped rather than folded at 80."""
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


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
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
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
    )


@connectors_cli.command("list")
def connectors_list() -> None:
    """List the installed connectors (plugins included) with their metrics."""
    from connectors.registry import load_connectors

    table = Table(title="connectors")
    for column in ("key", "name", "category", "metrics"):
        table.add_column(column)
    for key, cls in sorted(load_connectors().items()):
        names = ", ".join(m.name for m in cls.metrics)
        table.add_row(key, cls.name, cls.category, names or "(any, checked by the platform)")
    _stdout().print(table)


# --- demo -------------------------------------------------------------------------------------


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
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
    from app.core.db import reset_engine, session_scope
    from app.core.errors import DomainError
    from app.core.migrate import upgrade
    from app.sync.clock import today_in

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (os.environ.get("DATABASE_URL") or os.environ.get("KRSYNC_DATABASE_URL")):
        os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'krsync.db'}"
    reset_engine()  # and the settings: the database may have changed just now
    key, key_file = workspace_of.admin_key(data_dir)
    # Read from the settings as the bootstrap admin key, by the API this process serves too.
    os.environ["KRSYNC_ADMIN_KEY"] = key
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
    )
    title = f"krsync demo: {workspace.cycle.name}"
    _stdout().print(Panel(body, title=escape(title), expand=False), highlight=False)
    if serve_after:
        serve(host=host, port=port, workers=1, scheduler=True)


# --- sync -------------------------------------------------------------------------------------


def _day(value: str) -> date:
    """The API's strict `YYYY-MM-DD`; imported here, as `krsync --help` needs none of the API."""
    from app.core.schemas import iso_date

    try:
        return iso_date(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@cli.command()
def sync(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="A data source's name; repeat for several (default: every enabled source)",
        ),
    ] = None,
    from_: Annotated[
        date | None,
        typer.Option(
            "--from", parser=_day, metavar="YYYY-MM-DD", help="First day to fetch (with --to)"
        ),
    ] = None,
    to: Annotated[
        date | None,
        typer.Option(
            "--to", parser=_day, metavar="YYYY-MM-DD", help="Last day to fetch (with --from)"
        ),
    ] = None,
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
                    select(DataSource).where(DataSource.enabled.is_(True)).order_by(DataSource.name)
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
    from app.sync.clock import today_in

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
    _stdout().print(_summary(runs, done, seconds))
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

    from app.sync.engine import classify, execute_run_async

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

    with progress:
        outcomes = asyncio.run(every())
    for outcome in outcomes:
        if isinstance(outcome, SQLAlchemyError):
            _database_error(outcome)
        if isinstance(outcome, Exception):
            fail(classify(outcome))
    return seconds


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


def _summary(
    runs: Sequence[tuple[int, str]], done: dict[int, SyncRun], seconds: dict[int, float]
) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("source", overflow="fold", min_width=6)
    table.add_column("status", no_wrap=True)
    table.add_column("window", no_wrap=True)
    table.add_column("API calls", justify="right")
    table.add_column("written", justify="right")  # observations
    table.add_column("secs", justify="right")
    table.add_column("error", overflow="fold", min_width=10)
    for run_id, name in runs:
        run = done.get(run_id)
        if run is None:
            table.add_row(name, "deleted", "", "", "", "", "the source was deleted meanwhile")
            continue
        window = _window(run.window_from, run.window_to)
        note = (run.error or "").splitlines()[0] if run.error else ""
        if not note and run.status == "partial":
            note = f"{len(run.warnings)} warning(s), below"
        style = _STATUS_STYLE.get(run.status, "dim")
        table.add_row(
            name,
            f"[{style}]{run.status}[/]",
            window,
            str(run.api_calls),
            str(run.observations_written),
            f"{seconds.get(run_id, 0.0):.1f}",
            note,
        )
    return table


# --- sources ----------------------------------------------------------------------------------


@sources_cli.command("list")
def sources_list() -> None:
    """List the data sources, their schedules and how their last sync went."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.db import session_scope
    from app.models import DataSource, SyncRun

    last = (
        select(SyncRun.data_source_id, func.max(SyncRun.id).label("run_id"))
        .group_by(SyncRun.data_source_id)
        .subquery()
    )
    try:
        with session_scope() as session:
            rows = session.execute(
                select(DataSource, SyncRun)
                .outerjoin(last, last.c.data_source_id == DataSource.id)
                .outerjoin(SyncRun, SyncRun.id == last.c.run_id)
                .order_by(DataSource.name)
            ).all()
    except SQLAlchemyError as exc:
        _database_error(exc)
    if not rows:
        console.print("no data sources yet (create one with POST /api/v1/data-sources)")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("name", "connector", "enabled", "schedule", "timezone", "last success"):
        table.add_column(column)
    table.add_column("last run", overflow="fold")
    for src, run in rows:
        table.add_row(
            src.name,
            src.connector,
            "yes" if src.enabled else "[dim]no[/]",
            src.schedule,
            src.timezone,
            _when(src.last_success_at),
            _last_run(run),
        )
    _stdout().print(table)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "never"


def _last_run(run: SyncRun | None) -> str:
    if run is None:
        return "never"
    style = _STATUS_STYLE.get(run.status, "dim")
    return f"[{style}]{run.status}[/] ({run.trigger}, {_when(run.started_at)})"


@sources_cli.command("check")
def sources_check(
    name: Annotated[str, typer.Argument(help="The data source's name")],
) -> None:
    """Prove a source's credentials and ids work with one cheap call; exit 1 if they don't."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.db import session_scope
    from app.sources.service import check_source

    try:
        with session_scope() as session:
            src = _source_named(session, name)
            ok, message = check_source(session, src.id, actor="cli")
    except SQLAlchemyError as exc:
        _database_error(exc)
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


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name that says who uses the key")],
    role: Annotated[str, typer.Option(help="viewer, editor or admin")] = "viewer",
) -> None:
    """Create an API key and print its secret (shown this once)."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.auth.service import create_api_key
    from app.core.db import session_scope

    if role not in ("viewer", "editor", "admin"):
        fail(f"unknown role {role!r}: use viewer, editor or admin")
    try:
        with session_scope() as session:
            _, secret = create_api_key(session, name=name, role=role, actor="cli")  # type: ignore[arg-type]
    except SQLAlchemyError as exc:
        _database_error(exc)
    typer.echo(secret)


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
