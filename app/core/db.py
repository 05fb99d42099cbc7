"""Database engine and sessions, for PostgreSQL and the embedded SQLite default."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    Select,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.core.errors import found
from app.core.settings import get_settings

R = TypeVar("R")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """SQLite needs foreign keys switched on and WAL so the API reads while a sync writes."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # 50 at most: a sync run holds a lock connection and a work connection, and the engine
    # runs up to 24 at once (`app.sync.engine.MAX_PARALLEL_RUNS`, a nightly's sources together).
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=40)


def among_bound(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """`column IN :name`, the ids bound at execution (a statement built once and kept); on
    PostgreSQL as one array. SQLAlchemy expands an IN list value by value on every execution (a
    bind per id), and psycopg caches the conversion of short queries only: a statement naming a
    source's 50 key results in several places then costs more Python than the database spends
    on it."""
    if dialect == "postgresql":
        found: ColumnElement[bool] = column == any_(bindparam(name, type_=ARRAY(Integer)))
        return found
    within: ColumnElement[bool] = column.in_(bindparam(name, expanding=True))
    return within


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.database_url, echo=settings.sql_echo)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def reset_engine() -> None:
    """Tests and the CLI switch databases at run time; forget the cached engine."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()
    get_settings.cache_clear()


def get_session() -> Iterator[Session]:
    """The request owns the transaction: commit on success, roll back on any error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def request_session() -> AsyncIterator[Session]:
    """`get_session` for requests, with one thread-pool trip instead of two.

    Creating a session touches no connection, so it is done on the event loop; the first
    statement connects, in whatever worker thread runs it. Only the end of the transaction
    (commit or rollback, then close) may block, and it goes to the pool as one call.
    """
    session = get_sessionmaker()()
    try:
        yield session
    except BaseException:
        await _finish(session, commit=False)
        raise
    await _finish(session, commit=True)


# "function" scope commits before the response is sent: a 201 means the write is stored.
SessionDep = Annotated[Session, Depends(request_session, scope="function")]


async def _finish(session: Session, *, commit: bool) -> None:
    if not session.in_transaction():
        session.close()  # never touched the database (a cached read): nothing that can block
        return
    await run_in_threadpool(_end, session, commit=commit)


def _end(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            try:
                session.commit()
            except BaseException:
                session.rollback()
                raise
        else:
            session.rollback()
    finally:
        session.close()


@contextmanager
def session_scope() -> Iterator[Session]:
    """The same transaction rule for work that is not a request (CLI, scheduler, sync)."""
    yield from get_session()


def child_or_404(
    session: Session, model: type[R], ident: int, parent: tuple[str, int], what: str
) -> R:
    """A row by id, counted as missing unless it belongs to the parent the URL names.

    `parent` is the row's foreign-key attribute and the id it must hold: a row of another
    parent is as much "not found" as no row, so that ids can't be probed across parents.
    """
    row = session.get(model, ident)
    attr, parent_id = parent
    return found(row if row is not None and getattr(row, attr) == parent_id else None, what)


def equal_to(*filters: tuple[Any, object]) -> list[ColumnElement[bool]]:
    """`column == value` for each filter a caller gave; a filter left out (None) matches all."""
    return [column == value for column, value in filters if value is not None]


def count(session: Session, model: Any, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def paged(
    session: Session,
    query: Select[R],
    where: Sequence[Any],
    *order_by: Any,
    limit: int,
    offset: int,
) -> tuple[list[R], int]:
    """One page of a list endpoint and how many rows match in all (the page's `total`).

    The count is of the query's entity under the same conditions, so a page and its total
    can never disagree about what matched.
    """
    total = count(session, query.column_descriptions[0]["entity"], *where)
    page = session.scalars(query.where(*where).order_by(*order_by).limit(limit).offset(offset))
    return list(page.all()), total
