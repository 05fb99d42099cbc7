"""GET /api/v1/connectors: the installed connectors and their metric catalogues (SPEC section 4)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.sync.settle import settle_days
from connectors import registry
from connectors.demo import DemoConnector
from factories import api_key_headers


class BrokenConnector(DemoConnector):
    key = "broken"
    name = "A plugin with a bug"

    @classmethod
    def describe(cls) -> dict[str, Any]:
        raise RuntimeError("oops")


def _demo(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(i for i in items if i["key"] == "demo")


def test_viewer_reads_the_catalogue(client: TestClient, anon: TestClient) -> None:
    viewer = api_key_headers(client, "viewer")
    response = anon.get("/api/v1/connectors", headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"]) >= 1
    demo = _demo(body["items"])
    assert demo["name"] == "Demo data"
    assert demo["category"] == "demo"
    assert demo["config"]["properties"]["seed"]["type"] == "integer"
    assert demo["credentials"]["type"] == "object"

    metrics = {m["name"]: m for m in demo["metrics"]}
    sessions = metrics["sessions"]
    assert sessions["additive"] is True
    assert sessions["history"] == "daily"
    assert "sum" in sessions["aggregations"]
    assert set(sessions["filters"]) == {"channel", "country"}
    assert sessions["filters"]["channel"] == ["eq", "neq", "in", "not_in"]
    assert "split_by" in sessions["params"]["properties"]

    bounce = metrics["bounce_rate"]
    assert bounce["additive"] is False
    assert "sum" not in bounce["aggregations"]
    assert metrics["audience_size"]["history"] == "snapshot"


def test_catalogue_pages(client: TestClient) -> None:
    total = client.get("/api/v1/connectors").json()["total"]
    page = client.get("/api/v1/connectors", params={"limit": 1, "offset": total - 1}).json()
    assert page["total"] == total
    assert len(page["items"]) == 1
    assert client.get("/api/v1/connectors", params={"offset": total}).json()["items"] == []


def test_catalogue_needs_a_key(anon: TestClient) -> None:
    assert anon.get("/api/v1/connectors").status_code == 401


def test_a_broken_plugin_is_left_out(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry, "_cache", {**registry.load_connectors(), "broken": BrokenConnector}
    )
    response = client.get("/api/v1/connectors")
    assert response.status_code == 200
    keys = [i["key"] for i in response.json()["items"]]
    assert "demo" in keys
    assert "broken" not in keys


def test_the_catalogue_shows_each_api_version_and_its_sunset(client: TestClient) -> None:
    """SPEC section 4: the platform API version each connector speaks by default, and the day
    its vendor retires it where the vendor publishes one. LinkedIn supports a monthly version a
    year at least (https://learn.microsoft.com/en-us/linkedin/marketing/versioning), so 202606
    from 1 June 2027; Meta lists v25.0 "Available until" 29 July 2028
    (https://developers.facebook.com/docs/graph-api/changelog/versions/); Salesforce has dated
    no retirement past 40.0 (https://help.salesforce.com/s/articleView?id=005321531); the
    others publish no sunset for the version in their paths.
    """
    items = client.get("/api/v1/connectors", params={"limit": 100}).json()["items"]
    versions = {i["key"]: (i["api_version"], i["api_version_sunset"]) for i in items}
    assert versions == {
        "csv": (None, None),
        "demo": (None, None),
        "ga4": ("v1beta", None),
        "hubspot": ("v3", None),
        "linkedin": ("202606", "2027-06-01"),
        "mailchimp": ("3.0", None),
        "meta": ("v25.0", "2028-07-29"),
        "pipedrive": ("v1", None),
        "push": (None, None),
        "rest_json": (None, None),
        "salesforce": ("v60.0", None),
        "search_console": ("v1", None),
        "sql": (None, None),
        "x": ("v2", None),
        "youtube": ("v2", None),
    }


def test_the_catalogue_says_what_each_filter_operator_matches(client: TestClient) -> None:
    """HubSpot's `contains` is CONTAINS_TOKEN, "contains a token", a whole word with `*` as
    wildcard (https://developers.hubspot.com/docs/api/crm/search); every other platform's
    `contains` is a substring, and the catalogue says which is which."""
    items = client.get("/api/v1/connectors", params={"limit": 100}).json()["items"]
    meanings = {i["key"]: i["filter_meanings"] for i in items}
    assert "whole word" in meanings["hubspot"]["contains"]
    assert "CONTAINS_TOKEN" in meanings["hubspot"]["contains"]
    for key in ("ga4", "search_console", "salesforce", "mailchimp", "csv"):
        assert "substring" in meanings[key]["contains"], key
    assert meanings["hubspot"]["in"] == meanings["salesforce"]["in"] == "equals one of the values"
    assert "contains" not in meanings["demo"]  # the demo offers no `contains`


def test_the_catalogue_tells_mailchimps_link_clicks_from_people_who_clicked(
    client: TestClient,
) -> None:
    """A Mailchimp campaign report's `unique_clicks` sums each link's unique clicks and
    `unique_subscriber_clicks` counts the people who clicked
    (https://mailchimp.com/developer/marketing/api/reports/): both are offered, each saying
    which it is."""
    items = client.get("/api/v1/connectors", params={"limit": 100}).json()["items"]
    [mailchimp] = [i for i in items if i["key"] == "mailchimp"]
    metrics = {m["name"]: m for m in mailchimp["metrics"]}
    assert "counts twice" in metrics["campaigns.unique_clicks"]["description"]
    people = metrics["campaigns.unique_subscriber_clicks"]
    assert people["description"].startswith("People who clicked")
    assert set(people["filters"]) == {"campaign_title", "campaign_type"}


#: SPEC section 4: GA4 2, Search Console 3, Mailchimp 7, Meta 28, CRMs 7, snapshots 0; LinkedIn
#: follower data arrives about two days late and YouTube restates its last two or three days.
SETTLE_DAYS = {
    "ga4": 2,
    "search_console": 3,
    "mailchimp": 7,
    "meta": 28,
    "hubspot": 7,
    "salesforce": 7,
    "pipedrive": 7,
    "linkedin": 2,
    "youtube": 3,
    "demo": 2,
    "x": 0,
    "csv": 0,
    "rest_json": 0,
    "sql": 0,
    "push": 0,
}


def test_the_catalogue_shows_settle_days_for_every_metric(client: TestClient) -> None:
    items = client.get("/api/v1/connectors", params={"limit": 100}).json()["items"]
    settle = {
        item["key"]: {m["name"]: (m["settle_days"], m["history"]) for m in item["metrics"]}
        for item in items
    }
    for key, days in SETTLE_DAYS.items():
        for name, (shown, history) in settle[key].items():
            assert shown == (0 if history == "snapshot" else days), (key, name)
    # Snapshots are today's figure: nothing of them is restated.
    assert settle["mailchimp"]["audience.members"] == (0, "snapshot")
    assert settle["linkedin"]["followers.total"] == (0, "snapshot")
    assert settle["linkedin"]["followers.organic_gain"] == (2, "daily")


@pytest.mark.parametrize(
    ("key", "metric", "days"),
    [("ga4", "keyEvents:purchase", 2), ("meta", "instagram.profile_views", 28)],
)
def test_open_ended_metrics_settle_like_their_connector(key: str, metric: str, days: int) -> None:
    assert settle_days(key, metric) == days
