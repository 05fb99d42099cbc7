"""A 422 reads as its validator worded it: pydantic's "Value error, " wrapper never shows.

Pydantic prefixes the message of a validator that raised ValueError with "Value error, "; read
by a person ("timezone: Value error, not an IANA timezone name") it is noise from the library.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import data_source, workspace

WRAPPERS = ("Value error", "Assertion failed")


def _refusal(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    payload: dict[str, Any] = response.json()
    for wrapper in WRAPPERS:
        assert wrapper not in response.text, payload
    return payload


def test_a_field_validator_reads_as_written(client: TestClient) -> None:
    body = {"name": "web", "connector": "demo", "config": {}, "timezone": "Mars/Olympus"}
    payload = _refusal(client, "/api/v1/data-sources", body)
    assert payload["detail"] == (
        "timezone: not an IANA timezone name; use one such as `Europe/Berlin` or `UTC`"
    )
    assert payload["field"] == "timezone"
    [error] = payload["errors"]
    assert error["msg"].startswith("not an IANA timezone name")


def test_a_model_validator_reads_as_written(client: TestClient) -> None:
    body = {"name": "2026-Q3", "start_date": "2026-09-30", "end_date": "2026-07-01"}
    payload = _refusal(client, "/api/v1/cycles", body)
    assert payload["detail"] == "body: end_date must be on or after start_date"


def test_a_sync_window_reads_as_written(client: TestClient) -> None:
    source = data_source(client)["id"]
    payload = _refusal(client, f"/api/v1/data-sources/{source}/sync", {"from": "2026-07-01"})
    assert payload["detail"] == "body: give both `from` and `to`, or neither for the usual window"


def test_a_connectors_config_validator_reads_as_written(client: TestClient) -> None:
    body = {
        "name": "crm",
        "connector": "hubspot",
        "config": {"base_url": "ftp://crm.example.com"},
    }
    payload = _refusal(client, "/api/v1/data-sources", body)
    assert payload["detail"].startswith(
        "config.base_url: `base_url` must be an http:// or https:// address"
    )


@pytest.mark.parametrize("value", ["DE", []])
def test_a_mapping_filter_reads_as_written(client: TestClient, value: Any) -> None:
    _, _, kr = workspace(client)
    source = data_source(client)["id"]
    body = {
        "key_result_id": kr,
        "data_source_id": source,
        "metric": "sessions",
        "filters": [{"field": "country", "op": "in", "value": value}],
    }
    payload = _refusal(client, "/api/v1/mappings", body)
    assert payload["detail"].startswith("filters[0]: `in` needs")
