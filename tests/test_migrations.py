"""The Alembic history runs both ways on both databases and agrees with the models."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect

from app.core.migrate import alembic_config, current_revision, downgrade, head_revision, upgrade
from app.models import Base


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert _tables(db_url) == set(Base.metadata.tables)
    downgrade(db_url, "base")
    assert _tables(db_url) == set()
    upgrade(db_url, "head")
    assert _tables(db_url) == set(Base.metadata.tables)
    engine = create_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    """`alembic check` raises when autogenerate would find anything to do."""
    command.check(alembic_config(db_url))
