"""The mapping builder (SPEC section 6, "Mapping builder"; mappings are admin-only, section 3):
a key result, a source, a metric from its catalogue with its params and filters, a preview of
the last 28 days that stores nothing, then save, edit and delete, over HTTP as a signed-in
browser does. Refusals read as the API words them, beside the field they name."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import respx
import stamina
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sync_factories import freeze_today
from web.browser_session import sign_in

from app.core.db import session_scope
from app.core.settings import get_settings
from app.models import Mapping, Observation
from conftest import ADMIN_KEY
from factories import create, cycle, data_source, key_result, mapping, objective
from tests.connectors import kits  # noqa: F401  (loads every kit first: they import kits)
from tests.connectors.acme import configure_engine
from tests.connectors.kit_hubspot import BASE_URL, TOKEN, FakeHubSpot

TODAY = date(2026, 8, 15)
#: The 28 full days before today, in the source's calendar.
WINDOW = [TODAY - timedelta(days=n) for n in range(28, 0, -1)]


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_today(monkeypatch, TODAY)


def _stored() -> tuple[int, int]:
    """Mappings and observations in the database: what a preview must leave alone."""
    with session_scope() as s:
        mappings = s.scalar(select(func.count()).select_from(Mapping)) or 0
        observations = s.scalar(select(func.count()).select_from(Observation)) or 0
    return mappings, observations


def _kr(client: TestClient, **over: Any) -> int:
    o = objective(client, cycle(client)["id"], title="Grow qualified pipeline")["id"]
    body = {"title": "600 sign-ups", "unit": "signups", "target_value": 600} | over
    kr_id: int = key_result(client, o, **body)["id"]
    return kr_id


def _form(source_id: int, metric: str = "signups", **fields: str) -> dict[str, str]:
    """What the builder's form sends once the source and metric are shown."""
    base = {
        "data_source_id": str(source_id),
        "shown_source": str(source_id),
        "metric": metric,
        "shown_metric": metric,
        "rows": "3",
        "scale": "1",
    }
    return base | fields


def _error(page: str, slot: str) -> str:
    found = re.search(rf'<p class="field-error[^"]*" id="mb-{slot}-error">([^<]*)</p>', page)
    assert found, f"no message beside {slot}: {re.findall(r'field-error[^>]*>[^<]*', page)}"
    return html.unescape(found.group(1))


def _selected(page: str, select_id: str) -> str:
    block = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert block, select_id
    chosen = re.search(r'<option value="([^"]*)" selected>', block.group(1))
    return html.unescape(chosen.group(1)) if chosen else ""


def _value(page: str, input_id: str) -> str:
    found = re.search(rf'<input id="{input_id}"[^>]*value="([^"]*)"', page)
    assert found, input_id
    return html.unescape(found.group(1))


def _preview_rows(page: str) -> dict[str, str]:
    rows = re.findall(r'data-date="([0-9-]+)"><td[^>]*>[^<]*</td><td[^>]*>([^<]*)</td>', page)
    return dict(rows)


# --- the walk -----------------------------------------------------------------------------------


def test_an_admin_picks_previews_saves_edits_and_deletes_a_mapping(
    client: TestClient, anon: TestClient
) -> None:
    kr = _kr(client)
    source = data_source(client, name="Demo web analytics")["id"]
    csrf = sign_in(anon, ADMIN_KEY)
    new = f"/key-results/{kr}/mappings/new"

    # The key-result page offers the builder to admins.
    assert f'href="{new}"' in anon.get(f"/key-results/{kr}").text

    # Step 1: the sources, each with its connector.
    step1 = anon.get(new)
    assert step1.status_code == 200
    assert re.search(rf'<option value="{source}">Demo web analytics — Demo data', step1.text)

    # Step 2: the catalogue of the source's connector, the first metric's facts and fields.
    step2 = anon.get(new, params={"data_source_id": source})
    assert step2.status_code == 200
    text = step2.text
    assert _selected(text, "mb-metric") == "sessions"
    for name in ("sessions", "signups", "deals_won", "bounce_rate", "followers"):
        assert f'<option value="{name}"' in text
    facts = re.search(r'id="mb-metric-facts">(.*?)</dl>', text, re.S)
    assert facts
    for fact in ("Website sessions", "Unit", "Additive", "Lower is better", "Settle days"):
        assert fact in facts.group(1)
    assert 'name="param.split_by"' in text
    assert text.count('name="filter_field_') == 3  # a few blank rows
    assert '<option value="channel">' in text
    assert '<option value="country">' in text
    assert 'name="role"' not in text  # a `sum` key result takes role `value` only

    # Another metric is shown on a submit; "Add a filter row" gives one more.
    shown = anon.post(
        new, data=_form(source, shown_metric="sessions", action="refresh", csrf_token=csrf)
    )
    assert shown.status_code == 200
    assert "Product sign-ups" in shown.text
    assert 'name="shown_metric" value="signups"' in shown.text
    more = anon.post(new, data=_form(source, action="add_filter", csrf_token=csrf))
    assert more.text.count('name="filter_field_') == 4

    # Preview: 28 days from the source, the same as the API's preview, nothing stored.
    before = _stored()
    audits = client.get("/api/v1/audit-events").json()["total"]
    chosen = {"filter_field_1": "channel", "filter_op_1": "eq", "filter_value_1": "Email"}
    preview = anon.post(new, data=_form(source, action="preview", csrf_token=csrf, **chosen))
    assert preview.status_code == 200, preview.text[-2000:]
    rows = _preview_rows(preview.text)
    assert sorted(rows) == [d.isoformat() for d in WINDOW]
    assert 'class="kr-chart mb-chart kr-chart-wide"' in preview.text
    assert preview.text.count('class="ch-point') == 2 * 28  # the wide and the narrow chart
    latest = r'data-date="2026-08-14"><td[^>]*>2026-08-14</td><td[^>]*>[^<]*</td><td[^>]*>yes<'
    assert re.search(latest, preview.text)  # inside the metric's settle days: provisional
    assert _stored() == before
    assert client.get("/api/v1/audit-events").json()["total"] == audits
    # The filter moved up to the first row; the user's values are kept.
    assert _selected(preview.text, "mb-filter-0-field") == "channel"
    assert _value(preview.text, "mb-filter-0-value") == "Email"

    # Save: as POST /api/v1/mappings; back to the key result, whose list offers edit and delete.
    saved = anon.post(
        new, data=_form(source, action="save", csrf_token=csrf, **chosen), follow_redirects=False
    )
    assert saved.status_code == 303, saved.text[-2000:]
    assert saved.headers["location"] == f"/key-results/{kr}#mappings"
    items = client.get("/api/v1/mappings", params={"key_result_id": kr}).json()["items"]
    assert len(items) == 1
    made = items[0]
    assert (made["metric"], made["filters"], made["role"], made["group"], made["scale"]) == (
        "signups",
        [{"field": "channel", "op": "eq", "value": "Email"}],
        "value",
        "",
        1.0,
    )
    mid = made["id"]
    api = client.post(
        f"/api/v1/mappings/{mid}/preview",
        json={"from": WINDOW[0].isoformat(), "to": WINDOW[-1].isoformat()},
    ).json()["values"]
    assert {v["date"]: v["value"] for v in api} == {
        d: float(v.replace(",", "")) for d, v in rows.items()
    }
    page = anon.get(f"/key-results/{kr}").text
    assert f'href="/mappings/{mid}/edit"' in page
    assert f'href="/mappings/{mid}/delete"' in page
    assert _stored()[1] > before[1]  # the backfill ran

    # Edit: the builder filled from the mapping; saving changes it as PATCH does.
    edit = anon.get(f"/mappings/{mid}/edit")
    assert edit.status_code == 200
    assert _selected(edit.text, "mb-metric") == "signups"
    assert _selected(edit.text, "mb-filter-0-field") == "channel"
    assert _value(edit.text, "mb-filter-0-value") == "Email"
    edited = {
        "filter_field_0": "channel",
        "filter_op_0": "in",
        "filter_value_0": "Email, Paid Social",
        "scale": "2",
    }
    previewed = anon.post(
        f"/mappings/{mid}/edit", data=_form(source, action="preview", csrf_token=csrf, **edited)
    )
    assert previewed.status_code == 200
    assert len(_preview_rows(previewed.text)) == 28
    assert client.get(f"/api/v1/mappings/{mid}").json()["scale"] == 1.0  # not saved by a preview
    changed = anon.post(
        f"/mappings/{mid}/edit",
        data=_form(source, action="save", csrf_token=csrf, **edited),
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text[-2000:]
    got = client.get(f"/api/v1/mappings/{mid}").json()
    assert got["filters"] == [{"field": "channel", "op": "in", "value": ["Email", "Paid Social"]}]
    assert got["scale"] == 2.0

    # Delete: asked first, with what goes with it; then gone with its values.
    ask = anon.get(f"/mappings/{mid}/delete")
    assert ask.status_code == 200
    with session_scope() as s:
        wrote = s.scalar(
            select(func.count()).select_from(Observation).where(Observation.mapping_id == mid)
        )
    assert wrote
    assert re.search(rf"The {wrote:,} daily values it wrote", ask.text)
    assert "backfilled" in ask.text
    gone = anon.post(f"/mappings/{mid}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"] == f"/key-results/{kr}#mappings"
    assert client.get(f"/api/v1/mappings/{mid}").status_code == 404
    assert _stored() == (0, 0)


def test_a_ratio_key_result_asks_for_the_side_and_a_grouped_one_for_the_label(
    client: TestClient, anon: TestClient
) -> None:
    ratio = _kr(client, title="Conversion", unit="%", aggregation="ratio", target_value=2)
    each = _kr(client, title="Followers on each platform", group_rule="each")
    source = data_source(client)["id"]
    sign_in(anon, ADMIN_KEY)

    page = anon.get(f"/key-results/{ratio}/mappings/new", params={"data_source_id": source}).text
    assert _selected(page, "mb-role") == "numerator"
    assert "sum of its numerator by the sum of its denominator" in page
    mapping(client, ratio, source, "signups", role="numerator")
    page = anon.get(f"/key-results/{ratio}/mappings/new", params={"data_source_id": source}).text
    assert _selected(page, "mb-role") == "denominator"  # the side not yet mapped

    page = anon.get(f"/key-results/{each}/mappings/new", params={"data_source_id": source}).text
    assert 'id="mb-group"' in page
    assert "scores each group on its own" in page
    assert 'name="role"' not in page


# --- refusals -----------------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused_and_stores_nothing(
    client: TestClient, anon: TestClient
) -> None:
    kr = _kr(client)
    source = data_source(client)["id"]
    sign_in(anon, ADMIN_KEY)
    for action in ("save", "preview"):
        refused = anon.post(f"/key-results/{kr}/mappings/new", data=_form(source, action=action))
        assert refused.status_code == 403
        assert "Nothing was changed" in refused.text
    assert _stored() == (0, 0)

    mid = mapping(client, kr, source)["id"]
    stored = _stored()
    for path in (f"/mappings/{mid}/edit", f"/mappings/{mid}/delete"):
        refused = anon.post(path, data=_form(source, action="save", scale="3"))
        assert refused.status_code == 403
    assert _stored() == stored
    assert client.get(f"/api/v1/mappings/{mid}").json()["scale"] == 1.0


def test_an_editor_can_neither_open_nor_post_the_builder(
    client: TestClient, anon: TestClient
) -> None:
    kr = _kr(client)
    source = data_source(client)["id"]
    mid = mapping(client, kr, source)["id"]
    stored = _stored()
    key = create(client, "api-keys", name="an editor", role="editor")["key"]
    csrf = sign_in(anon, key)

    page = anon.get(f"/key-results/{kr}").text
    assert "/mappings/" not in page  # no builder, edit or delete link
    for path in (f"/key-results/{kr}/mappings/new", f"/mappings/{mid}/edit"):
        assert anon.get(path).status_code == 403
    for path in (
        f"/key-results/{kr}/mappings/new",
        f"/mappings/{mid}/edit",
        f"/mappings/{mid}/delete",
    ):
        refused = anon.post(path, data=_form(source, action="save", csrf_token=csrf, scale="3"))
        assert refused.status_code == 403
        assert "needs the admin role" in refused.text
    assert _stored() == stored
    assert client.get(f"/api/v1/mappings/{mid}").json()["scale"] == 1.0


@pytest.mark.parametrize(
    ("fields", "slot", "words"),
    [
        ({"metric": "no_such_metric", "shown_metric": "no_such_metric"}, "metric", "no metric"),
        ({"metric": "bounce_rate", "shown_metric": "bounce_rate"}, "metric", "can't be summed"),
        ({"param.split_by": "platform"}, "params-split_by", "split_by"),
        (
            {"filter_field_2": "platform", "filter_op_2": "eq", "filter_value_2": "linkedin"},
            "filter-0-field",
            "platform",
        ),
        (
            {"filter_field_0": "channel", "filter_op_0": "gt", "filter_value_0": "3"},
            "filter-0-op",
            "gt",
        ),
        ({"scale": "0"}, "scale", "must not be 0"),
        ({"data_source_id": "999999", "shown_source": "999999"}, "data_source_id", "pick"),
    ],
)
@pytest.mark.parametrize("action", ["save", "preview"])
def test_a_bad_metric_param_or_filter_is_refused_beside_its_field(
    client: TestClient,
    anon: TestClient,
    fields: dict[str, str],
    slot: str,
    words: str,
    action: str,
) -> None:
    kr = _kr(client)
    source = data_source(client)["id"]
    csrf = sign_in(anon, ADMIN_KEY)
    form = _form(source, action=action, csrf_token=csrf) | fields
    refused = anon.post(f"/key-results/{kr}/mappings/new", data=form)
    assert refused.status_code == 422, refused.text[-2000:]
    assert words in _error(refused.text, slot)
    assert 'id="mb-errors"' in refused.text
    assert 'data-date="' not in refused.text  # no preview of a refused mapping
    if "filter_value_2" in fields:  # the row typed is kept (as the first row now)
        assert _selected(refused.text, "mb-filter-0-field") == "platform"
        assert _value(refused.text, "mb-filter-0-value") == "linkedin"
    assert _stored() == (0, 0)


def test_a_taken_slot_is_refused_beside_the_group_and_the_api_says_the_same(
    client: TestClient, anon: TestClient
) -> None:
    kr = _kr(client)
    source = data_source(client)["id"]
    mapping(client, kr, source, "signups")
    csrf = sign_in(anon, ADMIN_KEY)
    refused = anon.post(
        f"/key-results/{kr}/mappings/new", data=_form(source, action="save", csrf_token=csrf)
    )
    assert refused.status_code == 409
    api = client.post(
        "/api/v1/mappings", json={"key_result_id": kr, "data_source_id": source, "metric": "leads"}
    )
    assert _error(refused.text, "group") == api.json()["detail"]
    assert 'id="mb-group"' in refused.text  # shown now, to take another label
    assert _stored()[0] == 1


def test_changing_the_metric_then_saving_shows_its_options_first(
    client: TestClient, anon: TestClient
) -> None:
    kr = _kr(client)
    source = data_source(client)["id"]
    csrf = sign_in(anon, ADMIN_KEY)
    form = _form(source, "sessions", shown_metric="signups", action="save", csrf_token=csrf)
    answer = anon.post(f"/key-results/{kr}/mappings/new", data=form, follow_redirects=False)
    assert answer.status_code == 200
    assert "Nothing was saved" in answer.text
    assert 'name="shown_metric" value="sessions"' in answer.text
    assert _stored() == (0, 0)


def test_unknown_ids_answer_404_pages(client: TestClient, anon: TestClient) -> None:
    sign_in(anon, ADMIN_KEY)
    for path in ("/key-results/999/mappings/new", "/mappings/999/edit", "/mappings/x/delete"):
        assert anon.get(path).status_code == 404


# --- HubSpot: deals.count with a filter, and a platform that refuses ----------------------------


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    configure_engine(monkeypatch)
    account = FakeHubSpot()
    for closed, stage in [
        ("2026-07-10T15:00:00.000Z", "closedwon"),  # before the 28 days
        ("2026-08-01T15:00:00.000Z", "closedwon"),
        ("2026-08-03T12:00:00.000Z", "closedlost"),
        ("2026-08-14T15:00:00.000Z", "closedwon"),
        ("2026-08-14T18:00:00.000Z", "closedwon"),
    ]:
        account.add(
            "deals", createdate="2026-05-04T10:00:00.000Z", closedate=closed, dealstage=stage
        )
    with (
        stamina.set_testing(True, attempts=2, cap=True),
        respx.mock(assert_all_called=False) as router,
    ):
        account.install(router)
        yield account
    get_settings.cache_clear()


def _hubspot_source(client: TestClient) -> int:
    return create(
        client,
        "data-sources",
        name="HubSpot",
        connector="hubspot",
        config={"base_url": BASE_URL},
        credentials={"access_token": TOKEN},
    )["id"]


def test_hubspot_deals_won_previewed_with_a_filter_then_saved(
    client: TestClient, anon: TestClient, hubspot: FakeHubSpot
) -> None:
    kr = _kr(client, title="Deals won", unit="deals")
    source = _hubspot_source(client)
    csrf = sign_in(anon, ADMIN_KEY)
    page = anon.get(f"/key-results/{kr}/mappings/new", params={"data_source_id": source}).text
    assert '<option value="deals.count"' in page
    assert 'name="param.date_property"' in page
    assert 'list="mb-filter-fields"' not in page  # any property: a box, not a closed list
    assert re.search(r'<input id="mb-filter-0-field" name="filter_field_0" type="text"', page)

    form = _form(
        source,
        "deals.count",
        **{"param.date_property": "closedate"},
        filter_field_0="dealstage",
        filter_op_0="eq",
        filter_value_0="closedwon",
        csrf_token=csrf,
    )
    before = _stored()
    preview = anon.post(f"/key-results/{kr}/mappings/new", data=form | {"action": "preview"})
    assert preview.status_code == 200, preview.text[-2000:]
    rows = {d: v for d, v in _preview_rows(preview.text).items() if v != "0"}
    assert rows == {"2026-08-01": "1", "2026-08-14": "2"}
    assert hubspot.search_bodies(), "HubSpot was asked"
    assert _stored() == before

    saved = anon.post(
        f"/key-results/{kr}/mappings/new", data=form | {"action": "save"}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text[-2000:]
    made = client.get("/api/v1/mappings", params={"key_result_id": kr}).json()["items"][0]
    assert made["params"] == {"date_property": "closedate"}
    assert made["filters"] == [{"field": "dealstage", "op": "eq", "value": "closedwon"}]


def test_a_platform_refusal_shows_redacted_beside_the_form_and_stores_nothing(
    client: TestClient, anon: TestClient, hubspot: FakeHubSpot
) -> None:
    kr = _kr(client, title="Deals won", unit="deals")
    source = _hubspot_source(client)
    csrf = sign_in(anon, ADMIN_KEY)
    hubspot.tokens.clear()  # the token is refused: 401 INVALID_AUTHENTICATION
    before = _stored()
    form = _form(source, "deals.count", action="preview", csrf_token=csrf)
    refused = anon.post(f"/key-results/{kr}/mappings/new", data=form)
    assert refused.status_code in (422, 502), refused.text[-2000:]
    error = re.search(r'id="preview-error">([^<]*)<', refused.text)
    assert error, refused.text[-2000:]
    assert error.group(1).strip()
    assert TOKEN not in refused.text
    assert _selected(refused.text, "mb-metric") == "deals.count"  # the form as it was
    assert _stored() == before
