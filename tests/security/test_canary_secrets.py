"""A canary in every secret of every connector, and no piece of it anywhere krsync writes.

For each registered connector (and each way it takes credentials), every credential field is a
fresh canary (:mod:`leaks`). The source is then driven over the REST API as an admin drives it:
created, read, listed, patched, tested, mapped (which backfills), previewed and synced against
its platform as played by the contract kit's fake (tests/connectors/kit_*.py), then made to
fail: the platform answers 401 and 500 with bodies and headers that echo every canary, padded
so that some echo straddles whatever length an error message is cut to, and then the connection
fails with the canaries in the exception. Afterwards no 8-character piece of any canary may be
in any response body or header krsync sent, any log record (every logger at DEBUG), any sync
run, audit event or other value of any table (found by reflection; the encrypted credentials
are recognised as Fernet tokens this server's key opens, and must hold the canaries).

SPEC sections 3 to 5: credentials are write-only and encrypted at rest; secrets never appear in
responses, logs, errors, sync runs or audit events. A secret put in a source's config instead
is refused, and not echoed, stored or logged either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import respx
import stamina
from fastapi.testclient import TestClient
from google.auth import _exponential_backoff
from sync_factories import freeze_today
from web.browser_session import sign_in

from app.core.db import get_engine
from app.core.settings import get_settings
from app.core.vault import get_secret_box
from app.main import app
from app.push import service as push_service
from conftest import ADMIN_KEY
from connectors.registry import get_connector, load_connectors
from connectors.testing import Query
from factories import create, cycle, objective
from tests.connectors import kit_hubspot as hubspot
from tests.connectors import kit_meta as meta
from tests.connectors import kit_salesforce as salesforce
from tests.connectors.acme import configure_engine
from tests.connectors.google_fake import (
    GA4_SCOPE,
    SC_SCOPE,
    FakeGoogle,
    service_account,
    year_of_search,
    year_of_traffic,
)
from tests.connectors.kit_linkedin import FakeLinkedIn
from tests.connectors.kit_mailchimp import LAST_DAY, FakeMailchimp, days_until
from tests.connectors.kit_pipedrive import FakePipedrive
from tests.connectors.kit_rest_json import HOST as REST_HOST
from tests.connectors.kit_rest_json import PATH as REST_PATH
from tests.connectors.kit_rest_json import TOKEN as REST_TOKEN
from tests.connectors.kit_rest_json import _answer as rest_answer
from tests.connectors.kit_x import FakeX
from tests.connectors.kit_youtube import FakeYouTube
from tests.connectors.kits import KITS
from tests.security.leaks import (
    Canaries,
    Finder,
    canary,
    database_texts,
    leaks,
    log_texts,
    response_texts,
)

TODAY = date(2026, 7, 11)
WINDOW = {"from": "2026-07-01", "to": "2026-07-05"}
#: Credential fields that name an endpoint or a moment, not a secret.
NOT_SECRET = frozenset(
    {"token_uri", "instance_url", "data_center", "expires_at", "refresh_token_expires_at"}
)
#: Connectors that take no secret at all: nothing to put a canary in.
NO_SECRETS = frozenset({"csv", "demo"})

Config = dict[str, Any]
Credentials = dict[str, Any]


@dataclass(frozen=True)
class Env:
    c: Canaries
    router: respx.MockRouter
    monkeypatch: pytest.MonkeyPatch
    files: Path


#: Builds a source's config and credentials from canaries and installs its platform.
Setup = Callable[[Env], tuple[Config, Credentials]]


@dataclass(frozen=True)
class Plan:
    connector: str
    way: str
    setup: Setup
    #: Whether the fake platform lets the source work before it is made to fail.
    reachable: bool = True

    @property
    def query(self) -> Query:
        return KITS[self.connector].query

    def __str__(self) -> str:
        return f"{self.connector}-{self.way}"


# --- the platforms, as the kits fake them, taking the canaries as credentials -----------------


def _hubspot_token(env: Env) -> tuple[Config, Credentials]:
    token = env.c("hubspot access_token")
    _hubspot_account((token,)).install(env.router)
    return {"base_url": hubspot.BASE_URL}, {"access_token": token}


def _hubspot_oauth(env: Env) -> tuple[Config, Credentials]:
    creds = {f: env.c(f"hubspot {f}") for f in ("client_id", "client_secret", "refresh_token")}
    env.monkeypatch.setattr(hubspot, "CLIENT_ID", creds["client_id"])
    env.monkeypatch.setattr(hubspot, "CLIENT_SECRET", creds["client_secret"])
    account = _hubspot_account(())
    account.refresh_tokens = {creds["refresh_token"]: hubspot.ALL_SCOPES}
    account.install(env.router)
    return {"base_url": hubspot.BASE_URL}, creds


def _hubspot_account(tokens: tuple[str, ...]) -> hubspot.FakeHubSpot:
    account = hubspot.FakeHubSpot(tokens=tokens)
    days = list(hubspot.SEEDED.days())
    account.spread("deals", days, lambda _: 1, dealstage="closedwon", amount="1500")
    return account


def _salesforce(env: Env) -> tuple[Config, Credentials]:
    creds = {
        f: env.c(f"salesforce {f}")
        for f in ("client_id", "client_secret", "refresh_token", "access_token")
    }
    env.monkeypatch.setattr(salesforce, "CLIENT_ID", creds["client_id"])
    env.monkeypatch.setattr(salesforce, "CLIENT_SECRET", creds["client_secret"])
    org = salesforce.FakeSalesforce()
    org.describe_object("Lead", {"Id": "id", "CreatedDate": "datetime", "LeadSource": "picklist"})
    org.refresh_tokens = {creds["refresh_token"]}
    org.access_tokens.add(creds["access_token"])
    org.install(env.router)
    return dict(salesforce.CONFIG), creds


def _pipedrive_token(env: Env) -> tuple[Config, Credentials]:
    company = FakePipedrive()
    company.api_tokens = {env.c("pipedrive api_token")}
    company.install(env.router)
    return dict(KITS["pipedrive"].config), {"api_token": next(iter(company.api_tokens))}


def _pipedrive_oauth(env: Env) -> tuple[Config, Credentials]:
    fields = ("access_token", "refresh_token", "client_id", "client_secret")
    creds = {f: env.c(f"pipedrive {f}") for f in fields}
    company = FakePipedrive()
    company.api_tokens = set()
    company.access_tokens = {creds["access_token"]}
    company.install(env.router)
    return dict(KITS["pipedrive"].config), creds


def _mailchimp_key(env: Env) -> tuple[Config, Credentials]:
    key = env.c("mailchimp api_key", suffix="-us21")
    FakeMailchimp(activity_days=days_until(LAST_DAY, 180), api_key=key).install(env.router)
    return dict(KITS["mailchimp"].config), {"api_key": key}


class _OAuthMailchimp(FakeMailchimp):
    """The same account reached with an OAuth access token instead of the API key."""

    token: str = ""

    def answer(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == f"Bearer {self.token}":
            pair = base64.b64encode(f"krsync:{self.api_key}".encode()).decode()
            request.headers["Authorization"] = f"Basic {pair}"
        return super().answer(request)


def _mailchimp_oauth(env: Env) -> tuple[Config, Credentials]:
    account = _OAuthMailchimp(activity_days=days_until(LAST_DAY, 180))
    account.token = env.c("mailchimp access_token")
    account.install(env.router)
    return dict(KITS["mailchimp"].config), {"access_token": account.token, "data_center": "us21"}


def _linkedin(env: Env) -> tuple[Config, Credentials]:
    fields = ("access_token", "refresh_token", "client_id", "client_secret")
    creds = {f: env.c(f"linkedin {f}") for f in fields}
    FakeLinkedIn(tokens={creds["access_token"]}).install(env.router)
    return dict(KITS["linkedin"].config), creds


def _meta(env: Env) -> tuple[Config, Credentials]:
    token = env.c("meta access_token")
    env.monkeypatch.setattr(meta, "TOKEN", token)  # Meta's paging links carry it, as Meta's do
    meta.FakeGraph(tokens={token}).install(env.router)
    return dict(meta.CONFIG), {"access_token": token}


def _x(env: Env) -> tuple[Config, Credentials]:
    bearer = env.c("x bearer_token")
    FakeX(bearer=bearer).install(env.router)
    return dict(KITS["x"].config), {"bearer_token": bearer}


def _youtube(env: Env) -> tuple[Config, Credentials]:
    fields = ("client_id", "client_secret", "refresh_token", "access_token")
    creds: Credentials = {f: env.c(f"youtube {f}") for f in fields}
    channel = FakeYouTube(refresh_token=creds["refresh_token"])
    channel.access_tokens.add(creds["access_token"])
    channel.install(env.router)
    creds["token_uri"] = KITS["youtube"].credentials["token_uri"]
    return dict(KITS["youtube"].config), creds


def _google_account(env: Env, product: str) -> dict[str, str]:
    """A service account JSON key whose every identifying and secret field is a canary; its
    private key is a real one (Google checks the signature), its PEM body lines the secret."""
    token_uri = KITS[product].credentials["service_account_info"]["token_uri"]
    info = service_account(token_uri)
    for field in ("project_id", "private_key_id", "client_id"):
        info[field] = env.c(f"{product} service_account_info.{field}")
    info["client_email"] = env.c.wrapped(
        f"{product} service_account_info.client_email", "{}@krsync-test.iam.gserviceaccount.com"
    )
    for i, line in enumerate(info["private_key"].splitlines()):
        if not line.startswith("-----"):
            env.c.derived[f"{product} service_account_info.private_key line {i}"] = line
    return info


def _google(product: str, oauth: bool) -> Setup:
    def setup(env: Env) -> tuple[Config, Credentials]:
        kit = KITS[product]
        scope = GA4_SCOPE if product == "ga4" else SC_SCOPE
        data: dict[str, Any] = (
            {"records": year_of_traffic()} if product == "ga4" else {"search": year_of_search()}
        )
        token_uri = kit.credentials["service_account_info"]["token_uri"]
        api_host = httpx.URL(kit.config["base_url"]).host
        if oauth:
            creds: Credentials = {
                f: env.c(f"{product} {f}") for f in ("client_id", "client_secret", "refresh_token")
            }
            key = (creds["client_id"], creds["client_secret"], creds["refresh_token"])
            google = FakeGoogle(oauth_clients={key: (scope,)}, **data)
            creds["token_uri"] = token_uri
        else:
            account = _google_account(env, product)
            google = FakeGoogle(accounts=[account], **data)
            creds = {"service_account_info": account}
        google.install(env.router, api_host, httpx.URL(token_uri).host)
        return dict(kit.config), creds

    return setup


def _rest_json(way: str) -> Setup:
    def setup(env: Env) -> tuple[Config, Credentials]:
        config = dict(KITS["rest_json"].config)
        creds: Credentials
        if way == "token":
            creds = {"token": env.c("rest_json token")}
            expected = f"Bearer {creds['token']}"
            header = "Authorization"
        elif way == "basic":
            creds = {f: env.c(f"rest_json {f}") for f in ("username", "password")}
            pair = f"{creds['username']}:{creds['password']}".encode()
            expected = "Basic " + base64.b64encode(pair).decode()
            header = "Authorization"
            env.c.derived["rest_json basic header"] = expected.removeprefix("Basic ")
        else:
            creds = {"header_value": env.c("rest_json header_value")}
            config["auth_header"] = header = "X-Stats-Key"
            expected = creds["header_value"]

        def answer(request: httpx.Request) -> httpx.Response:
            if request.headers.get(header) != expected:
                return httpx.Response(401, json={"error": "invalid_token"})
            request.headers["Authorization"] = f"Bearer {REST_TOKEN}"
            return rest_answer(request, empty=False)

        env.router.get(host=REST_HOST, path=REST_PATH).mock(side_effect=answer)
        return config, creds

    return setup


def _sql(env: Env) -> tuple[Config, Credentials]:
    """A password only a database server reads, and none to reach in every test run: the source
    is driven through the errors of a SQLite file that takes no password, a missing file and
    a server that can't be resolved."""
    path = env.files / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS marker (id INTEGER)")
    return (
        {"url": f"sqlite:///{path}", "statement_timeout_seconds": 10},
        {"password": env.c("sql password")},
    )


def _push(env: Env) -> tuple[Config, Credentials]:
    return {}, {"secret": env.c("push secret")}


PLANS = [
    Plan("ga4", "service-account", _google("ga4", oauth=False)),
    Plan("ga4", "oauth", _google("ga4", oauth=True)),
    Plan("search_console", "service-account", _google("search_console", oauth=False)),
    Plan("search_console", "oauth", _google("search_console", oauth=True)),
    Plan("hubspot", "token", _hubspot_token),
    Plan("hubspot", "oauth", _hubspot_oauth),
    Plan("salesforce", "oauth", _salesforce),
    Plan("pipedrive", "token", _pipedrive_token),
    Plan("pipedrive", "oauth", _pipedrive_oauth),
    Plan("mailchimp", "api-key", _mailchimp_key),
    Plan("mailchimp", "oauth", _mailchimp_oauth),
    Plan("linkedin", "oauth", _linkedin),
    Plan("meta", "token", _meta),
    Plan("x", "bearer", _x),
    Plan("youtube", "oauth", _youtube),
    Plan("rest_json", "token", _rest_json("token")),
    Plan("rest_json", "basic", _rest_json("basic")),
    Plan("rest_json", "header", _rest_json("header")),
    Plan("sql", "password", _sql, reachable=False),
    Plan("push", "secret", _push),
]


def test_every_connector_and_secret_field_has_a_canary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connector, or a credential field, added without a plan here fails."""
    planned = {plan.connector for plan in PLANS}
    assert planned | NO_SECRETS == set(load_connectors())
    for key in NO_SECRETS:
        assert not get_connector(key).credentials_model.model_fields, key
    env = Env(Canaries(), respx.MockRouter(), monkeypatch, tmp_path)
    canaried: dict[str, set[str]] = {key: set() for key in planned}
    for plan in PLANS:
        canaried[plan.connector] |= set(plan.setup(env)[1])
    for key in planned:
        fields = set(get_connector(key).credentials_model.model_fields) - NOT_SECRET
        assert fields <= canaried[key], f"{key}: no canary in {sorted(fields - canaried[key])}"


# --- the platform failing, echoing what it was sent -------------------------------------------


@dataclass
class Breaker:
    """The first route of the router: passes every call to the platform, or fails it."""

    echo: str = ""
    mode: str = "pass"  # pass | 401 | 500 | connect

    def __call__(self, request: httpx.Request) -> httpx.Response | None:
        if self.mode == "pass":
            return None  # no match: the platform's own routes answer
        if self.mode == "connect":
            raise httpx.ConnectError(f"connection reset while sending {self.echo}", request=request)
        status = int(self.mode)
        body = {
            "error": {"code": status, "message": self.echo, "status": "UNAUTHENTICATED"},
            "message": self.echo,
            "detail": self.echo,
            "title": self.echo,
            "error_description": self.echo,
        }
        headers = {"WWW-Authenticate": f'Bearer error="invalid_token" token="{self.echo[:500]}"'}
        return httpx.Response(status, json=body, headers=headers)


def echo_of(secrets: list[str], phase: int) -> str:
    """Every secret, over and over, shifted by ``phase``: wherever a message is cut, some echo
    straddles the cut; with phases 0 and 12 a straddling one keeps 8 characters or more."""
    block = " ".join(secrets)
    return "bad token " + "." * phase + " ".join([block] * max(3, 2400 // (len(block) + 1)))


# --- the walk ---------------------------------------------------------------------------------


@pytest.fixture
def env(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[Env, Breaker]]:
    configure_engine(monkeypatch)
    freeze_today(monkeypatch, TODAY)
    # google-auth waits out a failing token endpoint itself, as stamina would without its
    # testing mode.
    monkeypatch.setattr(_exponential_backoff, "time", SimpleNamespace(sleep=lambda _: None))
    files = tmp_path / "files"
    files.mkdir()
    monkeypatch.setenv("KRSYNC_FILES_DIR", str(files))
    get_settings.cache_clear()
    breaker = Breaker()
    with (
        stamina.set_testing(True, attempts=2),
        respx.mock(assert_all_called=False) as router,
    ):
        router.route(name="breaker").mock(side_effect=breaker)
        yield Env(Canaries(), router, monkeypatch, files), breaker
    get_settings.cache_clear()


@pytest.fixture
def watched(client: TestClient) -> tuple[TestClient, list[httpx.Response]]:
    """The admin's client, keeping every response krsync sends it."""
    seen: list[httpx.Response] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        seen.append(response)

    client.event_hooks["response"] = [keep]
    return client, seen


def debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    """Every logger at DEBUG, but SQLAlchemy's echo of the very rows the tables are read for."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        if not name.startswith("sqlalchemy"):
            caplog.set_level(logging.DEBUG, logger=name)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def sign(secret: str, body: bytes, age: int = 0) -> dict[str, str]:
    """Signed as a pushing system signs, on the clock the push service reads."""
    timestamp = str(int(push_service.clock.utcnow().timestamp()) - age)
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Krsync-Timestamp": timestamp,
        "X-Krsync-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def drive(plan: Plan, env: Env, breaker: Breaker, client: TestClient) -> None:
    """Everything an admin does with a source, and everything that goes wrong with it."""
    config, creds = plan.setup(env)
    query = plan.query
    cycle_id = cycle(client)["id"]
    objective_id = objective(client, cycle_id)["id"]
    kr = create(
        client,
        "key-results",
        objective_id=objective_id,
        title="Measured",
        target_value=3000,
        aggregation=query.aggregation,
    )["id"]
    body = {"name": f"canary {plan}", "connector": plan.connector, "config": config}
    source = ok(client.post("/api/v1/data-sources", json=body | {"credentials": creds}), 201)["id"]
    ok(client.get(f"/api/v1/data-sources/{source}"))
    ok(client.get("/api/v1/data-sources"))
    patch = {"credentials": creds, "lookback_days": 4, "name": f"canary {plan} (renamed)"}
    ok(client.patch(f"/api/v1/data-sources/{source}", json=patch))
    checked = ok(client.post(f"/api/v1/data-sources/{source}/test"))
    assert checked["ok"] or not plan.reachable, checked
    mapping = {"key_result_id": kr, "data_source_id": source, "metric": query.metric}
    mapping |= {"params": query.params, "filters": query.filters}
    mapped = client.post("/api/v1/mappings", json=mapping)
    # A source that can't be reached may have its mapping refused: nothing to preview then.
    assert mapped.status_code == 201 or (not plan.reachable and mapped.status_code == 422)
    mapping_id = mapped.json()["id"] if mapped.status_code == 201 else None
    if mapping_id is not None:
        preview = client.post(f"/api/v1/mappings/{mapping_id}/preview", json=WINDOW)
        assert preview.status_code == 200 or not plan.reachable, preview.text
    if plan.connector == "push":
        signed_push(client, source, creds["secret"])
    else:
        run = ok(client.post(f"/api/v1/data-sources/{source}/sync"), 202)
        status = ok(client.get(f"/api/v1/sync-runs/{run['id']}"))["status"]
        assert status == "succeeded" or not plan.reachable, status
        fail(plan, env, breaker, client, source, mapping_id, config)
    ok(client.get(f"/api/v1/data-sources/{source}"))
    ok(client.get(f"/api/v1/key-results/{kr}"))
    ok(client.get(f"/api/v1/mappings?data_source_id={source}"))
    if "/api/v1/audit-events" in app.openapi()["paths"]:
        ok(client.get("/api/v1/audit-events?limit=200"))
    runs = ok(client.get(f"/api/v1/sync-runs?data_source_id={source}&limit=200"))["items"]
    for run in runs:
        ok(client.get(f"/api/v1/sync-runs/{run['id']}"))
    if plan.connector != "push":
        assert "failed" in {r["status"] for r in runs}, runs


def fail(
    plan: Plan,
    env: Env,
    breaker: Breaker,
    client: TestClient,
    source: int,
    mapping_id: int | None,
    config: Config,
) -> None:
    def attempt() -> None:
        checked = ok(client.post(f"/api/v1/data-sources/{source}/test"))
        assert not checked["ok"], checked
        if mapping_id is not None:
            client.post(f"/api/v1/mappings/{mapping_id}/preview", json=WINDOW)
        ok(client.post(f"/api/v1/data-sources/{source}/sync"), 202)

    if plan.connector == "sql":
        broken = [
            {"url": f"sqlite:///{env.files / 'missing.db'}"},
            {"url": "postgresql://reader@db.krsync.test:5432/shop"},
        ]
        for other in broken:
            ok(client.patch(f"/api/v1/data-sources/{source}", json={"config": other}))
            attempt()
        ok(client.patch(f"/api/v1/data-sources/{source}", json={"config": config}))
        return
    secrets = list(env.c.all().values())
    for mode, phase in (("401", 0), ("401", 12), ("500", 0), ("500", 12), ("connect", 0)):
        breaker.mode, breaker.echo = mode, echo_of(secrets, phase)
        attempt()
    breaker.mode = "pass"


def signed_push(client: TestClient, source: int, secret: str) -> None:
    body = json.dumps([{"date": "2026-07-02", "metric": "signups", "value": 5}]).encode()
    ok(client.post(f"/api/v1/push/{source}", content=body, headers=sign(secret, body)), 202)
    wrong = sign(secret[::-1], body)
    stale = sign(secret, body, age=3600)
    for headers in (wrong, stale, {"X-Krsync-Signature": f"sha256={secret}"}):
        response = client.post(f"/api/v1/push/{source}", content=body, headers=headers)
        assert response.status_code == 401, response.text


def everything_said(
    responses: list[httpx.Response], caplog: pytest.LogCaptureFixture, finder: Finder
) -> tuple[list[str], list[str]]:
    """Pieces of canaries in what krsync answered, logged and stored; and the credentials it
    stored encrypted, decrypted."""
    logged = list(log_texts(caplog.records))  # before reading the tables logs their rows
    box = get_secret_box()
    assert box is not None
    texts, opened = database_texts(get_engine(), box)
    assert any(where.startswith("audit_events.") for where, _ in texts), "the audit is read"
    found = leaks(finder, response_texts(responses))
    found += leaks(finder, logged)
    found += leaks(finder, texts)
    return found, opened


@pytest.mark.parametrize("plan", PLANS, ids=str)
def test_no_piece_of_a_canary_leaks(
    plan: Plan,
    env: tuple[Env, Breaker],
    watched: tuple[TestClient, list[httpx.Response]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_everywhere(caplog)
    setup, breaker = env
    client, responses = watched
    drive(plan, setup, breaker, client)

    found, opened = everything_said(responses, caplog, Finder(setup.c.searched()))
    assert not found, "pieces of canaries found:\n" + "\n".join(found)
    stored = "".join(opened)
    assert all(value in stored for value in setup.c.values.values()), "stored, encrypted"


# --- a secret put in a source's config ----------------------------------------------------------

#: (connector, a config the connector takes, that config with a secret in it) by name. The
#: config is stored and shown in clear, so a secret there must be refused with a 422 that says
#: where it belongs (the credentials), before anything keeps it.
CONFIG_SECRETS: dict[str, tuple[str, Callable[[Env], Config], Callable[[Env, str], Config]]] = {
    "sql url password": (
        "sql",
        lambda env: {"url": f"sqlite:///{env.files / 'shop.db'}"},
        lambda env, s: {"url": f"postgresql://reader:{quote(s, safe='')}@db.krsync.test/shop"},
    ),
    "sql url password parameter": (
        "sql",
        lambda env: {"url": f"sqlite:///{env.files / 'shop.db'}"},
        lambda env, s: {"url": f"postgresql://reader@db.krsync.test/shop?password={quote(s)}"},
    ),
    "rest_json Authorization header": (
        "rest_json",
        lambda env: dict(KITS["rest_json"].config),
        lambda env, s: KITS["rest_json"].config | {"headers": {"Authorization": f"Bearer {s}"}},
    ),
    "rest_json API key header": (
        "rest_json",
        lambda env: dict(KITS["rest_json"].config),
        lambda env, s: KITS["rest_json"].config | {"headers": {"X-API-Key": s}},
    ),
    "rest_json url password": (
        "rest_json",
        lambda env: dict(KITS["rest_json"].config),
        lambda env, s: (
            KITS["rest_json"].config
            | {"url": f"https://reader:{quote(s, safe='')}@{REST_HOST}{REST_PATH}"}
        ),
    ),
    "csv url password": (
        "csv",
        lambda env: dict(KITS["csv"].config),
        lambda env, s: {"url": f"https://reader:{quote(s, safe='')}@sheets.krsync.test/pub.csv"},
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_SECRETS))
def test_a_secret_in_config_is_refused_and_kept_nowhere(
    case: str,
    env: tuple[Env, Breaker],
    watched: tuple[TestClient, list[httpx.Response]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_everywhere(caplog)
    setup, _ = env
    client, responses = watched
    connector, good, bad = CONFIG_SECRETS[case]
    if connector == "sql":
        _sql(setup)
    secret = setup.c(case)
    body = {"name": case, "connector": connector, "config": bad(setup, secret)}

    clean = body | {"name": f"{case} (clean)", "config": good(setup)}
    source = ok(client.post("/api/v1/data-sources", json=clean), 201)
    created = client.post("/api/v1/data-sources", json=body)
    patched = client.patch(f"/api/v1/data-sources/{source['id']}", json={"config": body["config"]})

    found, _ = everything_said(responses, caplog, Finder(setup.c.searched()))
    assert not found, "pieces of the secret found:\n" + "\n".join(found)
    for response in (created, patched):
        assert response.status_code == 422, response.text
        assert "credentials" in response.json()["detail"], response.text


# --- connecting a source with OAuth -------------------------------------------------------------


def test_the_oauth_connect_flow_lets_no_canary_out(
    env: tuple[Env, Breaker],
    watched: tuple[TestClient, list[httpx.Response]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The OAuth app's secret, the authorization code and the tokens the platform issues, through
    a token endpoint that first fails echoing them (a 500, then an `invalid_grant` quoting the
    code and secret), then answers: none of them in a response, a log or a plain column."""
    debug_everywhere(caplog)
    setup, _ = env
    client, responses = watched
    setup.monkeypatch.setenv("KRSYNC_PUBLIC_URL", "https://krsync.example.com")
    get_settings.cache_clear()
    c = setup.c
    secret = c("oauth app client_secret")
    access, refresh = c("issued access_token"), c("issued refresh_token")
    codes = [canary_code(c, n) for n in range(3)]
    echo = json.dumps(c.searched())
    by_code = {
        codes[0]: httpx.Response(500, text=f"token endpoint down: {echo}"),
        codes[1]: httpx.Response(400, json={"error": "invalid_grant", "error_description": echo}),
        codes[2]: httpx.Response(200, json={"access_token": access, "refresh_token": refresh}),
    }

    def token(request: httpx.Request) -> httpx.Response:
        return by_code[parse_qs(request.content.decode())["code"][0]]

    setup.router.post("https://oauth.krsync.test/token").mock(side_effect=token)
    app_body = {
        "client_id": "krsync-client",
        "client_secret": secret,
        "token_url": "https://oauth.krsync.test/token",
    }
    ok(client.put("/api/v1/oauth-apps/hubspot", json=app_body))
    ok(client.get("/api/v1/oauth-apps/hubspot"))
    body = {"name": "crm", "connector": "hubspot", "config": {}}
    source = ok(client.post("/api/v1/data-sources", json=body), 201)["id"]
    del client.headers["Authorization"]  # from here on, the admin's browser
    sign_in(client, ADMIN_KEY, https=True)
    outcomes = []
    for code in codes:
        started = client.get(
            f"/oauth/hubspot/authorize?data_source_id={source}", follow_redirects=False
        )
        assert started.status_code == 302, started.text
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        done = client.get(f"/oauth/callback?code={code}&state={state}", follow_redirects=False)
        outcomes.append(done.status_code)
    assert outcomes == [400, 400, 303]

    found, opened = everything_said(responses, caplog, Finder(c.searched()))
    assert not found, "pieces of canaries found:\n" + "\n".join(found)
    stored = "".join(opened)
    assert all(value in stored for value in (secret, access, refresh)), "stored, encrypted"


def canary_code(c: Canaries, n: int) -> str:
    """An authorization code: searched for everywhere, stored nowhere."""
    code = canary().replace("/", "-").replace("+", "-").replace("=", "-")
    c.derived[f"authorization code {n}"] = code
    return code
