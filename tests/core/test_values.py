"""One bound and one finiteness rule for every figure krsync stores, wherever it comes from."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.values import BOUND_TEXT, MAX_ABS_VALUE, storable, value_problem


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0.0, True),
        (5e-324, True),
        (MAX_ABS_VALUE, True),
        (-MAX_ABS_VALUE, True),
        (1.0000001e15, False),
        (-1e16, False),
        (1e308, False),
        (float("inf"), False),
        (float("-inf"), False),
        (float("nan"), False),
    ],
)
def test_the_rule(value: float, ok: bool) -> None:
    assert storable(value) is ok
    assert (value_problem(value) is None) is ok


def test_messages_say_what_to_send() -> None:
    assert value_problem(float("nan")) == "must be a finite number"
    assert value_problem(2e15) == f"must lie within {BOUND_TEXT}"
    assert BOUND_TEXT == "±1e15"


def test_every_stored_figure_of_the_api_has_the_same_bound(anon: TestClient) -> None:
    """Check-ins, key-result starts and targets, mapping scales and pushed values."""
    schemas = anon.get("/openapi.json").json()["components"]["schemas"]
    fields = [
        *(
            schemas[m]["properties"]["value"]["anyOf"][0]
            for m in ("CheckInCreate", "CheckInUpdate")
        ),
        *(
            schemas["KeyResultCreate"]["properties"][f]["anyOf"][0]
            for f in ("start_value", "target_value")
        ),
        *(
            schemas["KeyResultUpdate"]["properties"][f]["anyOf"][0]
            for f in ("start_value", "target_value")
        ),
        schemas["MappingCreate"]["properties"]["scale"],
    ]
    push = anon.get("/openapi.json").json()["paths"]["/api/v1/push/{data_source_id}"]["post"]
    fields.append(
        push["requestBody"]["content"]["application/json"]["schema"]["items"]["properties"]["value"]
    )
    assert [(f.get("minimum"), f.get("maximum")) for f in fields] == [
        (-MAX_ABS_VALUE, MAX_ABS_VALUE)
    ] * len(fields)
