"""The `krsync` command."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from app.core.settings import get_settings

cli = typer.Typer(
    name="krsync",
    help="Keeps marketing key results honest and current.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_cli = typer.Typer(help="Manage API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """One clear line instead of a traceback."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _database_error(exc: Exception) -> NoReturn:
    url = get_settings().database_url
    safe = url.split("@")[-1] if "@" in url else url
    fail(f"can't reach the database at {safe}: {type(exc).__name__}. Is it running?")


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
) -> None:
    """Run the API (and, once sources exist, the scheduler) with uvicorn."""
    import uvicorn

    console.print(f"krsync API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run("app.main:app", host=host, port=port, workers=workers, log_level="info")


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


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
