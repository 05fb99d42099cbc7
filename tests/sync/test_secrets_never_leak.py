"""A canary secret, used as an API key and as OAuth client secret and refresh token, must never
come back out: not in a SyncRun, a log record, a check or preview message, an API response, nor
the stored credentials column (SPEC section 4, "redaction of secrets from logs and errors").
tests/security/test_canary_secrets.py does the same for every registered connector over the API.

The platform is made to misbehave in the ways that drag secrets along: it echoes the key in a
500's and a 400's body, the token endpoint quotes the refresh token and client secret, a library
raises with the secret in its message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import respx
import stamina
from fastapi.testclient import TestClient
from sync_factories import freeze_today, make_kr, make_mapping, make_source, runs

from app.core.db import session_scope
from app.core.errors import DomainError
from app.core.settings import get_settings
from app.core.vault import decrypt_credentials, encrypt_credentials
from app.models import DataSource, Mapping, SyncRun
from app.sources.check import check_source
from app.sources.preview import preview_mapping
from app.sync.engine import sync_now
from connectors.base import ConnectorConfigError
from tests.connectors.acme import ACME_URL, configure_engine
from tests.connectors.acme_fake import CLIENT_ID, FakeAcme, day_of_month
from tests.security.leaks import extras, rendered

CANARY = "canary-9f2e-s3cr3t"
CLIENT_SECRET = f"{CANARY}-client"
REFRESH_TOKEN = f"{CANARY}-refresh"
OAUTH_URL = "https://oauth.acme.test"
TODAY = date(2026, 7, 11)


@pytest.fixture(autouse=True)
def engine_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, TODAY)
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
    get_settings.cache_clear()


@pytest.fixture
def fakes() -> Iterator[tuple[FakeAcme, FakeAcme]]:
    by_key = FakeAcme(ACME_URL, api_keys=(CANARY,), default=day_of_month)
    by_oauth = FakeAcme(
        OAUTH_URL,
        api_keys=(),
        default=day_of_month,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
    )
    with respx.mock(assert_all_called=False) as router:
        by_key.install(router)
        by_oauth.install(router)
        yield by_key, by_oauth


def source(name: str, base_url: str, credentials: dict[str, Any]) -> int:
    src = make_source(
        name=name,
        connector="acme",
        config={"base_url": base_url},
        credentials_encrypted=encrypt_credentials(credentials),
    )
    make_mapping(make_kr(), src, "signups")
    return src


def key_source() -> int:
    return source("acme key", ACME_URL, {"api_key": CANARY})


def oauth_source() -> int:
    credentials = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }
    return source("acme oauth", OAUTH_URL, credentials)


def sync(source_id: int) -> str:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        sync_now(s, src, trigger="cli")
    return runs(source_id)[-1].status


def check(source_id: int) -> str:
    with session_scope() as s:
        src = s.get(DataSource, source_id)
        assert src is not None
        ok, message = check_source(s, src)
    return f"{ok} {message}"


def preview(source_id: int) -> str:
    with session_scope() as s:
        mapping = s.query(Mapping).filter_by(data_source_id=source_id).one()
        try:
            return repr(preview_mapping(s, mapping, date(2026, 7, 1), date(2026, 7, 3)))
        except DomainError as exc:
            return f"{type(exc).__name__} {exc.status_code} {exc.message}"


def echo(status: int) -> httpx.Response:
    return httpx.Response(status, json={"error": f"invalid request for api_key={CANARY}"})


def all_runs() -> list[SyncRun]:
    with session_scope() as s:
        return list(s.query(SyncRun).order_by(SyncRun.id))


def run_text(run: SyncRun) -> str:
    return json.dumps([run.error, run.warnings, run.details], default=str)


def test_the_canary_leaks_nowhere(
    fakes: tuple[FakeAcme, FakeAcme], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    by_key, by_oauth = fakes
    keyed, oauthed = key_source(), oauth_source()
    said: list[str] = []  # what check and preview answered

    statuses = [sync(keyed), sync(oauthed)]
    said += [check(keyed), check(oauthed), preview(keyed), preview(oauthed)]

    by_key.fail("metrics", *[echo(500)] * 4)  # exhausts the client's retries
    statuses.append(sync(keyed))
    by_key.fail("metrics", echo(400))
    statuses.append(sync(keyed))
    by_key.fail("metrics", RuntimeError(f"the SDK blew up holding {CANARY}"))
    statuses.append(sync(keyed))
    by_key.fail("metrics", ConnectorConfigError(f"account of key {CANARY} is suspended"))
    statuses.append(sync(keyed))
    by_key.fail("metrics", *[httpx.ConnectError(f"TLS failure sending {CANARY}")] * 4)
    statuses.append(sync(keyed))
    by_key.fail("me", *[echo(503)] * 4)
    said.append(check(keyed))
    by_key.fail("metrics", *[echo(500)] * 4)
    said.append(preview(keyed))
    by_key.api_keys.clear()  # the key is revoked: 401 from now on
    statuses.append(sync(keyed))
    said += [check(keyed), preview(keyed)]

    by_oauth.access_tokens.clear()
    by_oauth.refresh_tokens.clear()
    by_oauth.fail(
        "token",
        *[
            httpx.Response(
                400,
                json={
                    "error": "invalid_grant",
                    "error_description": f"{REFRESH_TOKEN} was revoked for {CLIENT_SECRET}",
                },
            )
        ]
        * 3,
    )
    statuses.append(sync(oauthed))
    said += [check(oauthed), preview(oauthed)]

    assert statuses == ["succeeded"] * 2 + ["failed"] * 7, "every scenario ran as arranged"
    assert said[0].startswith("True")
    assert said[-1].startswith("InvalidInput")
    for run in all_runs():
        assert CANARY not in run_text(run), run_text(run)
    for text in said:
        assert CANARY not in text, text
    assert any("sync failed" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert CANARY not in rendered(record), rendered(record)
        assert CANARY not in extras(record), extras(record)
    with session_scope() as s:
        for src in s.query(DataSource):
            assert src.credentials_encrypted is not None
            assert CANARY not in src.credentials_encrypted
            assert CANARY in json.dumps(decrypt_credentials(src.credentials_encrypted))


def test_a_retried_transport_error_leaks_no_secret_into_log_extras(
    fakes: tuple[FakeAcme, FakeAcme], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    by_key, _ = fakes
    keyed = key_source()
    by_key.fail("metrics", httpx.ConnectError(f"TLS failure sending {CANARY}"))

    assert sync(keyed) == "succeeded"  # the retry got through

    retries = [r for r in caplog.records if r.getMessage() == "stamina.retry_scheduled"]
    assert retries
    for record in retries:
        assert CANARY not in extras(record), extras(record)


def test_the_canary_leaks_into_no_api_response(
    fakes: tuple[FakeAcme, FakeAcme], client: TestClient
) -> None:
    by_key, by_oauth = fakes
    keyed, oauthed = key_source(), oauth_source()
    sync(keyed)
    by_key.fail("metrics", *[echo(500)] * 4)
    sync(keyed)
    by_oauth.fail("token", echo(400))
    sync(oauthed)

    bodies = [
        client.get("/api/v1/data-sources"),
        client.get(f"/api/v1/data-sources/{keyed}"),
        client.get(f"/api/v1/data-sources/{oauthed}"),
        client.get("/api/v1/sync-runs"),
        client.get(f"/api/v1/sync-runs?data_source_id={keyed}"),
        *(client.get(f"/api/v1/sync-runs/{run.id}") for run in all_runs()),
    ]
    listed = bodies[4].json()
    assert listed["total"] == 2
    assert any("temporary failure" in (run.get("error") or "") for run in listed["items"])
    by_key.fail("me", echo(401))
    bodies.append(client.post(f"/api/v1/data-sources/{keyed}/test"))
    for response in bodies:
        assert response.status_code == 200, response.text
    with session_scope() as s:
        mapping_id = s.query(Mapping.id).filter_by(data_source_id=keyed).scalar()
    by_key.fail("metrics", *[echo(500)] * 4)
    window = {"from": "2026-07-01", "to": "2026-07-03"}
    bodies.append(client.post(f"/api/v1/mappings/{mapping_id}/preview", json=window))
    assert bodies[-1].status_code == 502, bodies[-1].text

    for response in bodies:
        assert CANARY not in response.text, response.text
