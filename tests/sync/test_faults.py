"""Fault injection through the real sync engine and the Acme connector (SPEC section 4).

Every fault test first seeds good values with a successful sync, changes what the platform
would answer, injects the fault, and then checks the run's record and that the seeded values
are untouched: same figures, same ``sync_run_id``. Traffic is mocked with respx (under the
engine's transport stack, so its retries, guard and token refresh all run) or served by a real
server on 127.0.0.1 when another process must talk to it. Retry waits are zeroed with
``stamina.set_testing`` except where a test measures one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import stamina
from sqlalchemy import text
from sync_factories import freeze_today, make_kr, make_mapping, make_source, observations, runs

from app.core.db import get_engine, session_scope
from app.core.settings import get_settings
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource, Mapping
from app.sources.check import check_source
from app.sources.preview import preview_mapping
from app.sync import engine as sync_engine
from app.sync.engine import create_run, execute_runs, sync_now
from tests.connectors.acme import ACME_URL, API_KEY_REFUSED, NOT_JSON, configure_engine
from tests.connectors.acme_fake import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    FakeAcme,
    day_of_month,
    serve,
)

TODAY = date(2026, 7, 11)
#: Seeded figures are the day of the month; afterwards Acme would answer ten times that, so a
#: value the failing run managed to write would show.
CHANGED = 10.0
ROOT = Path(__file__).resolve().parents[2]
FAR_FUTURE = 4_102_444_800  # 2100-01-01, so only a 401 makes the client refresh

Rows = list[tuple[date, str, str, float, int | None]]


@pytest.fixture(autouse=True)
def engine_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, TODAY)
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
    get_settings.cache_clear()


@pytest.fixture
def fake() -> Iterator[FakeAcme]:
    acme = FakeAcme(ACME_URL, default=day_of_month)
    with respx.mock(assert_all_called=False) as router:
        acme.install(router)
        yield acme


def changed(_metric: str, day: date) -> float:
    return day.day * CHANGED


def acme_source(
    credentials: dict[str, Any] | None = None,
    *,
    base_url: str = ACME_URL,
    name: str = "acme",
    metric: str = "signups",
) -> tuple[int, int]:
    """An Acme source with one mapping; returns (source id, key result id)."""
    src = make_source(
        name=name,
        connector="acme",
        config={"base_url": base_url},
        credentials_encrypted=encrypt_credentials(credentials or {"api_key": API_KEY}),
    )
    kr = make_kr()
    make_mapping(kr, src, metric)
    return src, kr


def sync(source_id: int, window: tuple[date, date] | None = None) -> int:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return sync_now(s, src, trigger="cli", window=window)


def seed(source_id: int, kr: int) -> Rows:
    """A first, successful sync; its figures are the day of the month."""
    run_id = sync(source_id)
    [run] = runs(source_id)
    assert run.status == "succeeded", run.error
    rows = observations(kr)
    assert rows
    assert {r[3] for r in rows} == {float(r[0].day) for r in rows}
    assert {r[4] for r in rows} == {run_id}
    return rows


def stored_credentials(source_id: int) -> dict[str, Any]:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        return decrypt_credentials(src.credentials_encrypted)


def oauth_credentials(access_token: str = "acme-access-stale") -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "access_token": access_token,
        "expires_at": FAR_FUTURE,
    }


def assert_updated(kr: int, run_id: int, seeded: Rows) -> None:
    """The run re-read the lookback days: those now carry its id and the changed figures."""
    rows = observations(kr)
    fresh = [r for r in rows if r[4] == run_id]
    assert fresh
    assert all(r[3] == r[0].day * CHANGED for r in fresh)
    assert len(rows) == len(seeded)


# --- faults that the run survives ----------------------------------------------------------


def test_429_with_retry_after_then_200_succeeds_after_a_retry(fake: FakeAcme) -> None:
    src, kr = acme_source()
    seeded = seed(src, kr)
    fake.default = changed
    fake.fail("metrics", httpx.Response(429, headers={"Retry-After": "1"}))

    run_id = sync(src)

    run = runs(src)[-1]
    assert run.status == "succeeded", run.error
    assert run.details["retries"] >= 1
    assert run.details["rate_limited"] == 1
    assert_updated(kr, run_id, seeded)


def test_a_retry_after_of_one_second_is_really_waited(fake: FakeAcme) -> None:
    src, kr = acme_source()
    seed(src, kr)
    fake.fail("metrics", httpx.Response(429, headers={"Retry-After": "1"}))

    with stamina.set_testing(False):
        started = time.monotonic()
        sync(src)
        elapsed = time.monotonic() - started

    assert runs(src)[-1].status == "succeeded"
    assert 0.9 <= elapsed < 10  # the platform's second, not a minutes-long backoff


def test_500_then_success_succeeds(fake: FakeAcme) -> None:
    src, kr = acme_source()
    seeded = seed(src, kr)
    fake.default = changed
    fake.fail("metrics", httpx.Response(500, json={"error": "oops"}))

    run_id = sync(src)

    run = runs(src)[-1]
    assert run.status == "succeeded", run.error
    assert run.details["retries"] == 1
    assert_updated(kr, run_id, seeded)


def test_a_long_retry_after_is_waited_out_by_the_engine(fake: FakeAcme) -> None:
    # 120 s is over the HTTP layer's 60 s cap: the connector raises RateLimited(120) and the
    # engine, not the client, waits it out within the run's budget.
    src, kr = acme_source()
    seeded = seed(src, kr)
    fake.default = changed
    fake.fail("metrics", httpx.Response(429, headers={"Retry-After": "120"}))

    run_id = sync(src)

    run = runs(src)[-1]
    assert run.status == "succeeded", run.error
    assert run.details["rate_limited"] == 1
    assert_updated(kr, run_id, seeded)


def test_401_refreshes_the_token_and_the_rotated_refresh_token_is_stored(
    fake: FakeAcme,
) -> None:
    src, kr = acme_source(oauth_credentials())
    seeded = seed(src, kr)  # the stale access token got a 401 already: refresh #1
    assert stored_credentials(src)["refresh_token"] == "acme-refresh-1"
    fake.access_tokens.clear()  # the platform revokes acme-access-1 before its expiry
    fake.default = changed

    run_id = sync(src)

    run = runs(src)[-1]
    assert run.status == "succeeded", run.error
    assert_updated(kr, run_id, seeded)
    [_, refresh] = fake.calls("token")
    assert b"refresh_token=acme-refresh-1" in refresh.content
    stored = stored_credentials(src)
    assert stored["refresh_token"] == "acme-refresh-2"  # the rotated one, encrypted at rest
    assert stored["access_token"] == "acme-access-2"
    assert stored["client_secret"] == CLIENT_SECRET
    with session_scope() as s:
        raw = s.get(DataSource, src).credentials_encrypted  # type: ignore[union-attr]
    assert raw is not None
    assert "acme-refresh-2" not in raw


def test_a_failing_source_never_blocks_another(fake: FakeAcme) -> None:
    other = FakeAcme("https://eu.acme.test", default=day_of_month)
    with respx.mock(assert_all_called=False) as router:
        fake.install(router)
        other.install(router)
        bad, bad_kr = acme_source(name="acme us")
        good, good_kr = acme_source(base_url=other.base_url, name="acme eu")
        fake.fail("metrics", *[httpx.Response(503)] * 4)
        with session_scope() as s:
            ids = [create_run(s, s.get(DataSource, i), trigger="schedule").id for i in (bad, good)]  # type: ignore[arg-type]
        asyncio.run(execute_runs(ids))

    assert runs(bad)[-1].status == "failed"
    assert runs(good)[-1].status == "succeeded"
    assert observations(bad_kr) == []
    assert observations(good_kr)


# --- faults that fail the run and leave the last good values alone ------------------------------


def assert_failed_untouched(src: int, kr: int, seeded: Rows, *phrases: str) -> str:
    run = runs(src)[-1]
    assert run.status == "failed"
    assert run.error is not None
    for phrase in phrases:
        assert phrase in run.error, run.error
    assert run.finished_at is not None
    assert observations(kr) == seeded
    return run.error


def test_timeouts_fail_the_run_as_temporary(fake: FakeAcme) -> None:
    src, kr = acme_source()
    seeded = seed(src, kr)
    fake.default = changed
    fake.fail("metrics", *[httpx.ReadTimeout("read timed out")] * 10)

    sync(src)

    error = assert_failed_untouched(src, kr, seeded, "temporary failure", "ReadTimeout")
    assert "the next run tries again" in error
    assert len(fake.calls("metrics")) >= 1 + 4  # seed + four attempts


def test_malformed_json_fails_the_run(fake: FakeAcme) -> None:
    src, kr = acme_source()
    seeded = seed(src, kr)
    fake.default = changed
    fake.fail("metrics", httpx.Response(200, text="<html>Bad gateway</html>"))

    sync(src)

    assert_failed_untouched(src, kr, seeded, "temporary failure", NOT_JSON)


def test_an_exception_on_the_second_page_writes_nothing_of_the_first(fake: FakeAcme) -> None:
    src, kr = acme_source()
    seeded = seed(src, kr)
    fake.default = changed
    # the incremental window (Jul 7-10) takes two pages of three days: the second explodes
    fake.fail("metrics", None, RuntimeError("the vendor SDK exploded"))

    sync(src)

    assert_failed_untouched(src, kr, seeded, "internal error", "the vendor SDK exploded")
    # the seed's ten days took four pages of three; the failed run two more
    assert len(fake.calls("metrics")) == -(-len(seeded) // 3) + 2


def test_bad_credentials_fail_the_run_as_an_auth_error(fake: FakeAcme) -> None:
    src, kr = acme_source()
    seeded = seed(src, kr)
    fake.api_keys.clear()  # the key was revoked in Acme's settings

    sync(src)

    assert_failed_untouched(src, kr, seeded, "authentication failed", API_KEY_REFUSED)


def test_a_revoked_refresh_token_fails_the_run_as_an_auth_error(fake: FakeAcme) -> None:
    src, kr = acme_source(oauth_credentials())
    seeded = seed(src, kr)
    fake.access_tokens.clear()
    fake.refresh_tokens.clear()

    sync(src)

    assert_failed_untouched(src, kr, seeded, "authentication failed", "reconnect the source")


def test_a_token_endpoint_that_is_down_is_a_temporary_failure(fake: FakeAcme) -> None:
    src, kr = acme_source(oauth_credentials())
    seeded = seed(src, kr)
    fake.access_tokens.clear()
    fake.fail("token", *[httpx.Response(503, text="maintenance")] * 4)

    sync(src)

    assert_failed_untouched(src, kr, seeded, "temporary failure")


def test_a_rate_limit_longer_than_the_budget_fails_the_run_without_waiting(
    fake: FakeAcme, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, kr = acme_source()
    seeded = seed(src, kr)
    fake.fail("metrics", *[httpx.Response(429, headers={"Retry-After": "7200"})] * 10)
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float, *args: Any) -> Any:
        slept.append(delay)
        return await real_sleep(0, *args)

    monkeypatch.setattr(asyncio, "sleep", record)
    with stamina.set_testing(False):  # real waits, recorded rather than slept
        sync(src)

    assert_failed_untouched(src, kr, seeded, "rate limited")
    assert max(slept, default=0) <= sync_engine.RATE_LIMIT_BUDGET


# --- OAuth refreshes outside a run ------------------------------------------------------------


def test_a_token_rotated_during_check_source_is_stored(fake: FakeAcme) -> None:
    src, _ = acme_source(oauth_credentials())
    with session_scope() as s:
        source = s.get(DataSource, src)
        assert source is not None
        ok, message = check_source(s, source)
    assert ok, message
    assert fake.refresh_tokens == {"acme-refresh-1"}  # REFRESH_TOKEN is dead now

    assert stored_credentials(src)["refresh_token"] == "acme-refresh-1"


def test_a_token_rotated_during_a_preview_is_stored(fake: FakeAcme) -> None:
    src, _ = acme_source(oauth_credentials())
    with session_scope() as s:
        mapping = s.query(Mapping).filter_by(data_source_id=src).one()
        values = preview_mapping(s, mapping, date(2026, 7, 1), date(2026, 7, 3))
    assert [v[3] for v in values] == [1.0, 2.0, 3.0]

    assert stored_credentials(src)["refresh_token"] == "acme-refresh-1"


# --- a process killed mid-run -------------------------------------------------------------------

CHILD = """
import sys
from datetime import date

from connectors import registry
from tests.connectors.acme import AcmeConnector

registry._cache = {**registry.load_connectors(), "acme": AcmeConnector}

from app.core.db import session_scope
from app.models import DataSource
from app.sync.engine import sync_now

source_id, start, end = int(sys.argv[1]), sys.argv[2], sys.argv[3]
window = (date.fromisoformat(start), date.fromisoformat(end))
with session_scope() as s:
    sync_now(s, s.get(DataSource, source_id), trigger="cli", window=window)
print("the sync finished, which it should not have", flush=True)
"""


def wait_for_advisory_locks_to_go() -> None:
    """PostgreSQL ends a killed client's backend (and its advisory lock) a moment later."""
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 10
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
    )
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.scalar(query):
                return
        time.sleep(0.05)
    raise AssertionError("the killed process's advisory lock was never released")


def test_a_process_killed_mid_run_leaves_values_alone_and_the_next_run_cleans_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KRSYNC_ALLOW_PRIVATE_NETWORKS", "true")
    get_settings.cache_clear()
    window = (date(2026, 7, 1), date(2026, 7, 10))  # four pages of three days
    acme = FakeAcme(default=day_of_month)
    with serve(acme) as base_url:
        src, kr = acme_source(base_url=base_url)
        with session_scope() as s:
            s.query(Mapping).update({"backfill_pending": False})
        sync(src, window)
        seeded = observations(kr)
        assert [r[3] for r in seeded] == [float(d) for d in range(1, 11)]
        acme.default = changed
        acme.stall_at = len(acme.calls("metrics")) + 2

        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(src), *(d.isoformat() for d in window)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            if not acme.stalled.wait(timeout=30):
                child.kill()
                out, err = child.communicate()
                pytest.fail(f"the child never reached page 2: {out.decode()} {err.decode()}")
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
            child.communicate()

        dead = runs(src)[-1]
        assert dead.status == "running"
        assert observations(kr) == seeded

        acme.stall_at = None
        acme.release.set()
        wait_for_advisory_locks_to_go()
        new_id = sync(src, window)

    seed_run, dead, new = runs(src)
    assert seed_run.status == "succeeded"
    assert dead.status == "failed"
    assert dead.error is not None
    assert "interrupted" in dead.error
    assert dead.finished_at is not None
    assert new.id == new_id
    assert new.status == "succeeded", new.error
    rows = observations(kr)
    assert [r[3] for r in rows] == [d * CHANGED for d in range(1, 11)]
    assert {r[4] for r in rows} == {new_id}
    assert all(window[0] <= r[0] <= window[1] for r in rows)
