"""What the benchmarks share: a loud failure and a fresh PostgreSQL database."""

from __future__ import annotations

from sqlalchemy import create_engine, make_url


class BenchError(RuntimeError):
    """The benchmark could not measure what it promised to: fail loudly."""


def recreate_database(url: str) -> None:
    """DROP ... WITH (FORCE) and CREATE through the server's maintenance database."""
    target = make_url(url)
    name = target.database
    if not name:
        raise BenchError(f"the database URL names no database: {url}")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    finally:
        admin.dispose()
