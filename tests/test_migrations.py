"""The Alembic history runs both ways on both databases and agrees with the models."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect, text

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


def test_source_health_starts_from_the_run_history(db_url: str) -> None:
    """0009: sources that already ran start with the health their runs give; back down, the
    columns go and nothing else does."""
    downgrade(db_url, "0008")
    engine = create_engine(db_url)
    now = "2026-08-16 03:00:00"
    try:
        with engine.begin() as conn:
            for source_id, name in ((1, "web"), (2, "crm"), (3, "new")):
                conn.execute(
                    text(
                        "INSERT INTO data_sources (id, name, connector, config, timezone, "
                        "schedule, lookback_days, enabled, state, created_at, updated_at) "
                        "VALUES (:id, :name, 'demo', '{}', 'UTC', '0 3 * * *', 3, true, '{}', "
                        ":now, :now)"
                    ),
                    {"id": source_id, "name": name, "now": now},
                )
            runs = [
                (1, "failed", "[]"),
                (1, "succeeded", '["a warning"]'),
                (2, "succeeded", "[]"),
                (2, "failed", "[]"),
                (2, "failed", "[]"),
                (2, "running", "[]"),
            ]
            for source_id, status, warnings in runs:
                conn.execute(
                    text(
                        "INSERT INTO sync_runs (data_source_id, trigger, status, started_at, "
                        "finished_at, api_calls, observations_written, warnings, details, "
                        "created_at, updated_at) VALUES (:sid, 'cli', :status, :now, "
                        ":finished, 0, 0, :warnings, '{}', :now, :now)"
                    ),
                    {
                        "sid": source_id,
                        "status": status,
                        "now": now,
                        "finished": None if status == "running" else now,
                        "warnings": warnings,
                    },
                )
        upgrade(db_url, "head")
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT name, consecutive_failures, last_run_status, last_run_warned, "
                    "last_attempt_at IS NOT NULL, paused_at FROM data_sources ORDER BY id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("web", 0, "succeeded", True, True, None),
            ("crm", 2, "failed", False, True, None),
            ("new", 0, None, False, False, None),
        ]
        downgrade(db_url, "0008")
        assert "consecutive_failures" not in {
            c["name"] for c in inspect(engine).get_columns("data_sources")
        }
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sync_runs")).scalar() == len(runs)
    finally:
        engine.dispose()
