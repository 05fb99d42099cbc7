"""The toolkit pieces the SQL and GA4 connectors share with others: filter keys, group labels,
the one ``value`` metric, close names, krsync's own database, private hosts, a deadline over a
driver's socket, and an official Google client's refusals read as Google's envelope."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import date
from operator import getitem
from pathlib import Path

import google.auth.exceptions
import pytest
import requests
from google.api_core import exceptions as gexc

from connectors.base import ConnectorAuthError, ConnectorConfigError, Filter, NoParams, Window
from connectors.deadline import Deadline
from connectors.errors import RequestRefused, did_you_mean
from connectors.files import not_own_database, own_database
from connectors.google_auth import GoogleBridge, GoogleCredentials, client_refusal
from connectors.netguard import first_private
from connectors.records import TEXT_OPS, Fields, filter_key, tally, value_metric
from tests.connectors.engine_client import BareClient


def test_filter_keys_ignore_order_repeats_and_value_types() -> None:
    a = [
        Filter(field="country", op="in", value=["FR", "DE", "FR"]),
        Filter(field="n", op="eq", value=1.0),
    ]
    b = [Filter(field="n", op="eq", value=1), Filter(field="country", op="in", value=["DE", "FR"])]
    assert filter_key(a) == filter_key(b) == (("country", "in", ("DE", "FR")), ("n", "eq", ("1",)))
    assert filter_key([Filter(field="on", op="eq", value=True)]) == (("on", "eq", ("true",)),)
    assert filter_key([]) == ()


def test_a_label_may_make_an_empty_group_no_group() -> None:
    rows = [(date(2026, 7, 1), 1.0, None), (date(2026, 7, 1), 2.0, "web")]
    fields = Fields(getitem, 0, 1, 2, label=lambda raw: None if raw is None else str(raw))
    values = tally(
        "q",
        enumerate(rows),
        fields,
        Window(date(2026, 7, 1), date(2026, 7, 1)),
        {},
        read_day=lambda raw: raw,
        read_value=lambda raw: raw,
    )
    assert {(v.group, v.value) for v in values} == {(None, 1.0), ("web", 2.0)}


def test_did_you_mean_names_close_names_only() -> None:
    assert did_you_mean("sesions", {"sessions", "newUsers"}) == "; did you mean `sessions`?"
    assert did_you_mean("zzz", {"sessions"}) == ""


def test_krsyncs_own_database_is_refused_by_any_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "krsync.db"
    own.write_bytes(b"")
    (tmp_path / "link.db").symlink_to(own)
    other = tmp_path / "shop.db"
    other.write_bytes(b"")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{own}")
    assert own_database() == own.resolve()
    with pytest.raises(ConnectorConfigError, match="krsync's own database"):
        not_own_database(tmp_path / "link.db", "link.db")
    not_own_database(other, "shop.db")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/krsync")
    assert own_database() is None


def test_first_private_names_the_address_and_why() -> None:
    assert first_private("127.0.0.1", 5432) == ("127.0.0.1", "loopback")
    assert first_private("8.8.8.8", 53) is None
    with pytest.raises((OSError, UnicodeError)):
        first_private("no-such-host.invalid", 5432)


def test_a_deadline_cuts_a_stalled_connection() -> None:
    left, right = socket.socketpair()
    with left, right:
        deadline = Deadline(0.2)
        deadline.watch(left)
        with deadline.running():
            left.settimeout(5)
            started = time.monotonic()
            assert left.recv(1) == b""  # shut down under the reader: end of stream
        assert deadline.expired
        assert time.monotonic() - started < 4


def test_a_deadline_that_does_not_pass_leaves_the_connection() -> None:
    left, right = socket.socketpair()
    with left, right:
        deadline = Deadline(5)
        deadline.watch(left)
        with deadline.running():
            right.sendall(b"x")
            assert left.recv(1) == b"x"
        assert not deadline.expired


def test_the_value_metric_of_a_connector_reading_the_users_own_figures() -> None:
    (spec,) = value_metric("A column", NoParams, filters={"*": TEXT_OPS})
    assert (spec.name, spec.unit, spec.description) == ("value", "value", "A column")
    assert spec.params_model is NoParams
    assert spec.filters == {"*": TEXT_OPS}


def test_an_official_clients_exception_reads_as_googles_envelope() -> None:
    answer = requests.Response()
    answer.status_code = 403
    answer.headers["Content-Type"] = "application/json"
    answer._content = json.dumps(
        {
            "error": {
                "code": 403,
                "status": "PERMISSION_DENIED",
                "message": "Google Analytics Data API has not been used in project 7 or it is "
                "disabled (token ya29.SECRET)",
            }
        }
    ).encode()
    answer.request = requests.Request("POST", "https://example.test/v1beta").prepare()
    refusal = client_refusal(
        gexc.from_http_response(answer), lambda text: text.replace("SECRET", "***"), pid="7"
    )
    assert refusal.status == 403
    assert refusal.codes == ("PERMISSION_DENIED", "SERVICE_DISABLED")
    assert "SECRET" not in refusal.said
    assert "has not been used" in refusal.said
    assert refusal.fields == {"pid": "7"}

    bare = client_refusal(gexc.NotFound("no such property"), str)
    assert (bare.status, bare.said, bare.codes) == (404, "no such property", ())


def test_a_token_endpoints_refusal_through_the_bridge_says_what_to_change() -> None:
    creds = GoogleCredentials(client_id="id", client_secret="s", refresh_token="r")

    def refused() -> None:
        raise google.auth.exceptions.RefreshError("invalid_grant: Token has been revoked.")

    async def run() -> None:
        async with BareClient() as client:
            await GoogleBridge(client).authorized(creds, refused)

    with pytest.raises(ConnectorAuthError, match="refresh token may be revoked"):
        asyncio.run(run())


def test_requests_refused_are_the_mappings_fault() -> None:
    assert issubclass(RequestRefused, ConnectorConfigError)
