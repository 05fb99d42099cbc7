"""``POST /api/v1/push/{id}``: signed figures flow into key results, everything else is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db import session_scope
from app.core.errors import Conflict
from app.core.settings import get_settings
from app.models import Mapping, PushSignature
from app.push import service as push_service
from connectors import registry
from connectors.push import PushConnector
from tests.factories import every_read
from tests.sync_factories import make_kr, make_mapping, observations, runs, source

SECRET = "push-secret-0123456789-abcdef"
AS_OF = "2026-07-10"


@pytest.fixture(autouse=True)
def push_env(monkeypatch: pytest.MonkeyPatch) -> None:
    discover = registry._discover

    def with_push() -> dict[str, registry.ConnectorClass]:
        return {**discover(), PushConnector.key: PushConnector}

    monkeypatch.setattr(registry, "_discover", with_push)
    monkeypatch.setattr(registry, "_cache", None)
    monkeypatch.setenv("KRSYNC_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()


def create_source(client: TestClient, connector: str = "push", **over: Any) -> int:
    body = {
        "name": f"{connector} source",
        "connector": connector,
        "config": {"seed": 7} if connector == "demo" else {},
        "credentials": {"secret": SECRET} if connector == "push" else {},
    } | over
    response = client.post("/api/v1/data-sources", json=body)
    assert response.status_code == 201, response.text
    assert SECRET not in response.text
    return int(response.json()["id"])


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Krsync-Timestamp": stamp,
        "X-Krsync-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def push(
    anon: TestClient, source_id: int, items: Any, **sign: Any
) -> tuple[int, dict[str, Any], str]:
    body = items if isinstance(items, bytes) else json.dumps(items).encode()
    response = anon.post(f"/api/v1/push/{source_id}", content=body, headers=signed(body, **sign))
    assert SECRET not in response.text
    return response.status_code, response.json(), response.text


ITEMS = [
    {"date": "2026-07-01", "metric": "signups", "value": 10, "group": "Email"},
    {"date": "2026-07-02", "metric": "signups", "value": 15.5, "group": "Email"},
    {"date": "2026-07-02", "metric": "signups", "value": 99, "group": "Web"},
    {"date": "2026-07-03", "metric": "leads", "value": 4},
]


def test_a_valid_push_flows_into_the_key_results_progress(
    client: TestClient, anon: TestClient
) -> None:
    src = create_source(client)
    kr = make_kr(target_value=100.0, start_value=0.0)
    mapping = make_mapping(
        kr, src, "signups", filters=[{"field": "group", "op": "eq", "value": "Email"}]
    )

    code, body, _ = push(anon, src, ITEMS)

    assert code == 202, body
    assert body["accepted"] == 4
    assert body["observations_written"] == 2
    assert body["unmatched_metrics"] == ["leads"]
    [run] = runs(src)
    assert run.id == body["sync_run_id"]
    assert (run.status, run.trigger, run.observations_written) == ("succeeded", "manual", 2)
    assert (str(run.window_from), str(run.window_to)) == ("2026-07-01", "2026-07-03")
    assert run.details == {"push": True, "items": 4, "unmatched": 1}
    assert source(src).last_success_at is not None
    assert [(str(d), g, v) for d, g, _, v, _ in observations(kr)] == [
        ("2026-07-01", "Email", 10.0),
        ("2026-07-02", "Email", 15.5),
    ]
    assert {r[4] for r in observations(kr)} == {run.id}
    assert mapping

    response = client.get(f"/api/v1/key-results/{kr}?as_of={AS_OF}")
    assert response.status_code == 200, response.text
    assert response.json()["progress"]["current_value"] == pytest.approx(25.5)


def test_an_item_without_group_takes_the_mappings_group_label(
    client: TestClient, anon: TestClient
) -> None:
    src = create_source(client)
    kr = make_kr()
    make_mapping(kr, src, "leads", group="all leads")

    code, body, _ = push(anon, src, ITEMS)

    assert code == 202, body
    assert body["unmatched_metrics"] == ["signups"]
    assert [(str(d), g, v) for d, g, _, v, _ in observations(kr)] == [
        ("2026-07-03", "all leads", 4.0)
    ]


def test_the_same_push_twice_is_idempotent(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)
    kr = make_kr()
    make_mapping(kr, src, "signups")

    now = int(utcnow().timestamp())
    first = push(anon, src, ITEMS, at=now - 1)
    before = observations(kr)
    second = push(anon, src, ITEMS, at=now)  # signed anew: a replay would be refused
    after = observations(kr)

    assert first[0] == second[0] == 202
    assert first[1]["observations_written"] == second[1]["observations_written"] == 3
    assert [r[:4] for r in after] == [r[:4] for r in before]
    assert len(after) == 3
    assert {r[4] for r in after} == {second[1]["sync_run_id"]}
    assert len(runs(src)) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Krsync-Timestamp": "now"},
        {"X-Krsync-Signature": "sha256=" + "0" * 64},
        {"X-Krsync-Timestamp": "1", "X-Krsync-Signature": "md5=abc"},
    ],
    ids=["none", "timestamp only", "signature only", "malformed"],
)
def test_missing_or_malformed_headers_are_401(
    client: TestClient, anon: TestClient, headers: dict[str, str]
) -> None:
    src = create_source(client)
    response = anon.post(f"/api/v1/push/{src}", content=b"[]", headers=headers)
    assert response.status_code == 401, response.text
    assert SECRET not in response.text


def test_a_wrong_signature_is_401(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)
    code, body, _ = push(anon, src, ITEMS, secret="another-secret-0123456789")
    assert code == 401
    assert "signature" in body["detail"]
    assert runs(src) == []


def test_a_tampered_body_is_401(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)
    headers = signed(json.dumps(ITEMS).encode())
    response = anon.post(f"/api/v1/push/{src}", content=b"[]", headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("offset", [-360, 360], ids=["6 minutes old", "6 minutes ahead"])
def test_a_stale_or_future_timestamp_is_401(
    client: TestClient, anon: TestClient, offset: int
) -> None:
    src = create_source(client)
    code, body, _ = push(anon, src, ITEMS, at=int(utcnow().timestamp()) + offset)
    assert code == 401
    assert "stale timestamp" in body["detail"]


def test_a_body_over_1_mb_is_413(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)
    item = {"date": "2026-07-01", "metric": "signups", "value": 1, "group": "x" * 150}
    big = json.dumps([item] * 6_000).encode()
    assert len(big) > 1024 * 1024
    code, _, _ = push(anon, src, big)
    assert code == 413


def test_a_streamed_body_over_1_mb_is_413(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)

    def chunks() -> Any:
        for _ in range(20):
            yield b" " * 100_000

    response = anon.post(f"/api/v1/push/{src}", content=chunks(), headers=signed(b""))
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("items", "where"),
    [
        (b"[{", "not valid"),
        (b'{"date": "2026-07-01"}', "JSON list"),
        ([ITEMS[0], {"date": "July 1st", "metric": "signups", "value": 1}], "item 1.date"),
        ([ITEMS[0], ITEMS[1], {"date": "2026-07-01", "metric": "x", "value": "1"}], "item 2"),
        (b'[{"date": "2026-07-01", "metric": "x", "value": NaN}]', "not valid"),
        ([{"date": "2026-07-01", "metric": "bad name!", "value": 1}], "item 0.metric"),
        ([{"date": "2026-07-01", "metric": "x", "value": 1, "extra": 1}], "item 0.extra"),
        ([{"date": "2026-07-01", "metric": "x"}], "item 0.value"),
        (["nope"], "item 0"),
    ],
)
def test_a_malformed_body_or_item_is_422_naming_it(
    client: TestClient, anon: TestClient, items: Any, where: str
) -> None:
    src = create_source(client)
    code, body, _ = push(anon, src, items)
    assert code == 422, body
    assert where in body["detail"]
    assert runs(src) == []


def test_unsigned_callers_cannot_tell_push_sources_from_other_ids(
    client: TestClient, anon: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown id, another connector's source and a push source with a wrong signature
    answer alike, after the same HMAC work, so no id can be probed for being a push source."""
    src = create_source(client)
    demo = create_source(client, "demo")
    macs: list[bytes] = []
    real_new = hmac.new

    def counting_new(key: bytes, msg: bytes, digestmod: Any) -> hmac.HMAC:
        macs.append(key)
        return real_new(key, msg, digestmod)

    body = json.dumps(ITEMS).encode()
    headers = signed(body, secret="not-the-secret-0123456789")
    monkeypatch.setattr(push_service.hmac, "new", counting_new)
    answers = [
        anon.post(f"/api/v1/push/{source_id}", content=body, headers=headers)
        for source_id in (424242, demo, src)
    ]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert answers[0].headers.get("www-authenticate") == answers[2].headers.get("www-authenticate")
    assert len(macs) == 3  # the unknown id and the demo source were checked against a key too
    assert runs(src) == runs(demo) == []
    unsigned = [anon.post(f"/api/v1/push/{i}", content=body) for i in (424242, demo, src)]
    assert len({(u.status_code, u.text) for u in unsigned}) == 1


def test_a_disabled_source_is_409(client: TestClient, anon: TestClient) -> None:
    src = create_source(client, enabled=False)
    code, _, _ = push(anon, src, ITEMS)
    assert code == 409


def test_the_secret_never_comes_back(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)
    make_mapping(make_kr(), src, "signups")
    texts = [
        client.get(f"/api/v1/data-sources/{src}").text,
        client.get("/api/v1/data-sources").text,
        client.get(f"/api/v1/sync-runs?data_source_id={src}").text,
        push(anon, src, ITEMS)[2],
        push(anon, src, ITEMS, secret="wrong-secret-0123456789")[2],
    ]
    assert all(SECRET not in t for t in texts)


def test_the_endpoint_is_in_openapi_without_an_api_key(anon: TestClient) -> None:
    spec = anon.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/push/{data_source_id}"]["post"]
    assert "security" not in operation
    assert {"202", "400", "401", "409", "413", "422"} <= set(operation["responses"])
    assert "404" not in operation["responses"]  # an unknown id answers as a bad signature


def test_the_catalogue_accepts_any_well_shaped_metric() -> None:
    spec = PushConnector.metric_spec("crm.deals:won-2")
    assert spec is not None
    assert (spec.name, spec.additive, spec.history) == ("crm.deals:won-2", True, "daily")
    assert PushConnector.metric_spec("no spaces") is None
    assert PushConnector.metric_spec("x" * 101) is None


def test_a_push_source_without_a_secret_gets_one_shown_once(
    client: TestClient, anon: TestClient
) -> None:
    created = client.post(
        "/api/v1/data-sources", json={"name": "webinar tool", "connector": "push", "config": {}}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["push_secret"]
    assert len(secret) >= 32
    src = int(created.json()["id"])
    assert secret not in client.get(f"/api/v1/data-sources/{src}").text
    assert secret not in client.get("/api/v1/data-sources").text
    make_mapping(make_kr(), src, "signups")

    body = json.dumps(ITEMS).encode()
    response = anon.post(f"/api/v1/push/{src}", content=body, headers=signed(body, secret=secret))
    assert response.status_code == 202, response.text
    assert secret not in response.text


def test_a_secret_given_at_creation_is_not_echoed(client: TestClient) -> None:
    created = client.post(
        "/api/v1/data-sources",
        json={"name": "p", "connector": "push", "config": {}, "credentials": {"secret": SECRET}},
    )
    assert created.status_code == 201
    assert created.json()["push_secret"] is None
    assert SECRET not in created.text


# --- values: one bound for every figure stored ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1e308, "within ±1e15"),
        (-1e308, "within ±1e15"),
        (1e16, "within ±1e15"),
        (-1.000001e15, "within ±1e15"),
        (b"1e400", "finite"),
        (b"-1e400", "finite"),
    ],
    ids=["1e308", "-1e308", "1e16", "just below -1e15", "1e400 (inf)", "-1e400 (-inf)"],
)
def test_a_value_beyond_the_bound_is_422_naming_the_item(
    client: TestClient, anon: TestClient, value: float | bytes, reason: str
) -> None:
    src = create_source(client)
    kr = make_kr()
    make_mapping(kr, src, "signups")
    literal = value if isinstance(value, bytes) else json.dumps(value).encode()
    body = (
        b'[{"date": "2026-07-01", "metric": "signups", "value": 1}, '
        b'{"date": "2026-07-02", "metric": "signups", "value": ' + literal + b"}]"
    )

    code, answer, _ = push(anon, src, body)

    assert code == 422, answer
    assert answer["detail"].startswith("item 1.value:")
    assert reason in answer["detail"]
    assert answer["field"] == "[1].value"
    assert observations(kr) == []
    assert runs(src) == []


def test_values_at_the_bound_are_stored_and_every_read_answers(
    client: TestClient, anon: TestClient
) -> None:
    """±1e15 on every day of the cycle, summed, averaged and fitted, on either database."""
    src = create_source(client)
    made = {
        aggregation: make_kr(aggregation=aggregation, start_value=0.0, target_value=1e15)
        for aggregation in ("sum", "avg", "last")
    }
    for kr in made.values():
        make_mapping(kr, src, "signups")
    first = date(2026, 7, 1)
    days = [(first + timedelta(days=n)).isoformat() for n in range(92)]
    items = [
        {"date": day, "metric": "signups", "value": 1e15 if i % 3 else -1e15}
        for i, day in enumerate(days)
    ]

    code, answer, _ = push(anon, src, items)

    assert code == 202, answer
    assert answer["observations_written"] == 3 * len(days)
    for aggregation, kr in made.items():
        progress = every_read(client, kr, "2026-09-30")
        assert progress["current_value"] is not None, aggregation
    assert every_read(client, made["sum"], "2026-09-30")["current_value"] == pytest.approx(
        (61 - 31) * 1e15
    )


def test_a_value_beyond_the_bound_once_scaled_is_422(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)
    kr = make_kr()
    mapping = make_mapping(kr, src, "signups", scale=1000.0)
    items = [{"date": "2026-07-01", "metric": "signups", "value": 1e13}]

    code, answer, _ = push(anon, src, items)

    assert code == 422, answer
    assert answer["detail"].startswith("item 0.value:")
    assert f"mapping {mapping}" in answer["detail"]
    assert observations(kr) == []
    assert runs(src) == []


# --- replays ----------------------------------------------------------------------------------


def test_a_replayed_push_is_409_and_rolls_nothing_back(
    client: TestClient, anon: TestClient
) -> None:
    src = create_source(client)
    kr = make_kr()
    make_mapping(kr, src, "signups")
    now = int(utcnow().timestamp())
    old = json.dumps([{"date": "2026-07-01", "metric": "signups", "value": 10}]).encode()
    new = json.dumps([{"date": "2026-07-01", "metric": "signups", "value": 20}]).encode()
    old_headers = signed(old, at=now - 60)

    first = anon.post(f"/api/v1/push/{src}", content=old, headers=old_headers)
    second = anon.post(f"/api/v1/push/{src}", content=new, headers=signed(new, at=now))
    replay = anon.post(f"/api/v1/push/{src}", content=old, headers=old_headers)

    assert (first.status_code, second.status_code) == (202, 202)
    assert replay.status_code == 409, replay.text
    assert "already accepted" in replay.json()["detail"]
    assert [r[3] for r in observations(kr)] == [20.0]
    assert len(runs(src)) == 2


def test_a_refused_push_leaves_its_signature_usable(client: TestClient, anon: TestClient) -> None:
    """Only an accepted push is remembered: the signature is written in its transaction."""
    src = create_source(client)
    kr = make_kr()
    mapping = make_mapping(kr, src, "signups", scale=1e6)
    body = json.dumps([{"date": "2026-07-01", "metric": "signups", "value": 1e10}]).encode()
    headers = signed(body)

    refused = anon.post(f"/api/v1/push/{src}", content=body, headers=headers)
    with session_scope() as s:
        stored = s.get(Mapping, mapping)
        assert stored is not None
        stored.scale = 1.0
    accepted = anon.post(f"/api/v1/push/{src}", content=body, headers=headers)

    assert (refused.status_code, accepted.status_code) == (422, 202)


def test_concurrent_replays_are_accepted_once(client: TestClient) -> None:
    src = create_source(client)
    kr = make_kr()
    make_mapping(kr, src, "signups")
    body = json.dumps(ITEMS).encode()
    headers = signed(body)
    barrier = threading.Barrier(4)

    def one() -> str:
        barrier.wait()
        try:
            push_service.receive(
                src, headers["X-Krsync-Timestamp"], headers["X-Krsync-Signature"], body
            )
        except Conflict:
            return "refused"
        return "accepted"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(lambda _: one(), range(4)))

    assert outcomes == ["accepted", "refused", "refused", "refused"]
    assert len(runs(src)) == 1


def test_signatures_too_old_to_replay_are_pruned(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)
    now = utcnow()
    with session_scope() as s:
        for minutes, digest in ((11, "a" * 64), (4, "b" * 64)):
            s.add(
                PushSignature(
                    data_source_id=src,
                    digest=digest,
                    signed_at=now - timedelta(minutes=minutes),
                    accepted_at=now - timedelta(minutes=minutes),
                )
            )

    code, _, _ = push(anon, src, ITEMS)

    assert code == 202
    with session_scope() as s:
        kept = set(s.scalars(select(PushSignature.digest)))
    assert "a" * 64 not in kept  # 11 minutes old: no timestamp that old passes the check
    assert "b" * 64 in kept  # 4 minutes old: it could still be replayed
    assert len(kept) == 2  # and the push just accepted


# --- unreadable bodies ------------------------------------------------------------------------


def test_a_deeply_nested_body_is_400(client: TestClient, anon: TestClient) -> None:
    src = create_source(client)
    body = b"[" * 100_000 + b"]" * 100_000

    code, answer, _ = push(anon, src, body)

    assert code == 400, answer
    assert "nested too deeply" in answer["detail"]
    assert runs(src) == []


def test_a_nested_body_over_1_mb_is_refused_before_it_is_read(
    client: TestClient, anon: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = create_source(client)
    parsed: list[bytes] = []
    monkeypatch.setattr(push_service, "parse_items", parsed.append)
    body = b"[" * 600_000 + b"]" * 600_000

    code, _, _ = push(anon, src, body)

    assert code == 413
    assert parsed == []
