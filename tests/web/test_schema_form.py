"""The data-source form generated from a connector's JSON Schemas, and read back as the API's body.

Every installed connector's `config` and `credentials` schemas (as `GET /api/v1/connectors`
publishes them) must give a form whose defaults, sent back untouched, are a body the connector's
own model accepts or refuses naming a field the form shows; a stored config shown in the form and
sent back unchanged must come back the same; and a secret's value never comes back out.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.web import schema_form
from app.web.schema_form import FormField
from connectors.registry import load_connectors

CONNECTORS = sorted(load_connectors())

#: A config each built-in connector accepts, filled the way an admin would.
SAMPLE_CONFIGS: dict[str, dict[str, Any]] = {
    "csv": {"url": "https://example.com/figures.csv", "delimiter": "\t", "decimal": ","},
    "demo": {"seed": 7},
    "ga4": {"property_id": "123456789"},
    "hubspot": {"base_url": "https://api.hubapi.com"},
    "linkedin": {"organization_id": "2414183", "api_version": "202606"},
    "mailchimp": {"list_id": "abc123", "page_size": 500},
    "meta": {"page_id": "1234", "instagram_user_id": "5678"},
    "pipedrive": {"company_domain": "acme"},
    "push": {},
    "rest_json": {
        "url": "https://api.example.com/stats?since={from}",
        "method": "POST",
        "headers": {"X-Team": "growth", "Accept": "application/json"},
        "query": {"per": "day"},
        "body": {"range": ["{from}", "{to}"]},
        "pagination": {"type": "page", "page_param": "p", "size": 50},
        "follow_other_origins": True,
    },
    "salesforce": {"instance_url": "https://acme.my.salesforce.com", "api_version": "v61.0"},
    "search_console": {"site_url": "sc-domain:example.com"},
    "sql": {"url": "postgresql://reader@db.example.com/shop", "statement_timeout_seconds": 10},
    "x": {"user_id": "2244994945"},
    "youtube": {"channel_id": "MINE"},
}


def _schemas(key: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
    cls = load_connectors()[key]
    described = cls.describe()
    return described["config"], described["credentials"], cls


def _located(fields: list[FormField], section: str, exc: ValidationError) -> list[str]:
    names = schema_form.sections_of(fields, section)
    found = []
    for err in exc.errors():
        where = ".".join([section, *(str(p) for p in err["loc"])])
        name = schema_form.locate(fields, section, where)
        assert name in names
        found.append(name)
    return found


@pytest.mark.parametrize("key", CONNECTORS)
def test_every_connectors_defaults_go_back_as_a_body_its_model_judges(key: str) -> None:
    """The form untouched: accepted, or refused naming each required field the form shows."""
    config_schema, credentials_schema, cls = _schemas(key)
    for schema, section, model in (
        (config_schema, "config", cls.config_model),
        (credentials_schema, "credentials", cls.credentials_model),
    ):
        fields = schema_form.form_fields(schema, section, secret=section == "credentials")
        shown = schema_form.form_values(fields, None)
        body, errors = schema_form.parse(fields, shown)
        assert errors == {}, (key, section, errors)
        required = {f.name for f in fields if f.required}
        try:
            model.model_validate(body)
        except ValidationError as exc:
            named = _located(fields, section, exc)
            # A missing required field is named by its own field; a rule over several fields
            # (credentials: "give a token, or a client id with its secret") by the section.
            assert set(named) <= required | {section}, (key, section, named)
        else:
            assert not required - {f.name for f in fields if f.has_default}


@pytest.mark.parametrize("key", CONNECTORS)
def test_a_stored_config_comes_back_unchanged(key: str) -> None:
    config_schema, _, cls = _schemas(key)
    config = SAMPLE_CONFIGS.get(key)
    if config is None:
        pytest.skip(f"no sample config for the plugin `{key}`")
    cls.config_model.model_validate(config)
    fields = schema_form.form_fields(config_schema, "config")
    body, errors = schema_form.parse(fields, schema_form.form_values(fields, config))
    assert errors == {}
    expected = cls.config_model.model_validate(config).model_dump()
    assert cls.config_model.model_validate(body).model_dump() == expected
    for name, value in config.items():  # what was stored goes back as it was, typed
        if isinstance(value, dict) and name in ("pagination",):  # plus its defaults, shown
            assert body[name].items() >= value.items(), name
        else:
            assert body[name] == value, name


@pytest.mark.parametrize("key", CONNECTORS)
def test_no_credential_value_is_ever_shown(key: str) -> None:
    _, credentials_schema, _ = _schemas(key)
    fields = schema_form.form_fields(credentials_schema, "credentials", secret=True)
    stored = {f.key: "s3cr3t-canary-0123456789" for f in fields}
    assert all(f.secret for f in schema_form.walk(fields))
    assert schema_form.form_values(fields, stored) == {}


# --- the shapes, one by one -------------------------------------------------------------------


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "social", "search"] = Field("email", description="Which channel")
    min_sessions: int = Field(0, ge=0, le=1000)


class Cursor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["cursor"]
    cursor_param: str = Field(min_length=1)


class Page(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["page"]
    size: int = Field(100, ge=1)


class Shapes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(description="The account id")
    filters: Filters = Field(default_factory=Filters, title="Narrow it down")
    tags: list[str] = Field(default_factory=list)
    weights: list[float] = [1.0, 0.5]
    verbose: bool = False
    ratio: float | None = None
    paging: Cursor | Page | None = Field(None, discriminator="type")
    api_key: str | None = Field(None, json_schema_extra={"writeOnly": True, "format": "password"})


def _shapes() -> list[FormField]:
    return schema_form.form_fields(Shapes.model_json_schema(), "config")


def _by_name(fields: list[FormField]) -> dict[str, FormField]:
    return {f.name: f for f in schema_form.walk(fields)}


def test_each_shape_gets_its_control() -> None:
    fields = _by_name(_shapes())
    assert fields["config.account"].kind == "text"
    assert fields["config.account"].required
    assert fields["config.account"].help == "The account id"
    group = fields["config.filters"]
    assert (group.kind, group.label) == ("group", "Narrow it down")
    channel = fields["config.filters.channel"]
    assert channel.kind == "choice"
    assert [v for v, _ in channel.choices] == ["email", "social", "search"]
    sessions = fields["config.filters.min_sessions"]
    assert (sessions.kind, sessions.min_attr, sessions.max_attr) == ("integer", "0", "1000")
    assert fields["config.tags"].kind == "lines"
    assert (fields["config.weights"].kind, fields["config.weights"].item_kind) == (
        "lines",
        "number",
    )
    assert fields["config.verbose"].kind == "checkbox"
    assert fields["config.ratio"].kind == "number"
    assert fields["config.ratio"].nullable
    paging = fields["config.paging"]
    assert paging.kind == "union"
    assert [v.tag for v in paging.variants] == ["cursor", "page"]
    assert "config.paging.page.size" in fields
    assert fields["config.api_key"].secret
    assert fields["config.api_key"].input_type == "password"


def test_defaults_are_filled_in_and_read_back() -> None:
    fields = _shapes()
    shown = schema_form.form_values(fields, None)
    assert shown["config.filters.channel"] == "email"
    assert shown["config.filters.min_sessions"] == "0"
    assert shown["config.weights"] == "1.0\n0.5"
    assert shown["config.verbose"] == ""
    assert "config.api_key" not in shown
    body, errors = schema_form.parse(fields, {**shown, "config.account": "acme"})
    assert errors == {}
    assert Shapes.model_validate(body) == Shapes(account="acme")


def test_a_filled_form_is_the_api_body() -> None:
    fields = _shapes()
    form = {
        "config.account": "  acme ",
        "config.filters.channel": "social",
        "config.filters.min_sessions": "25",
        "config.tags": "spring\n\n  launch \n",
        "config.weights": "2\n0.25",
        "config.verbose": "on",
        "config.ratio": "0.5",
        "config.paging": "page",
        "config.paging.page.size": "50",
        "config.paging.cursor.cursor_param": "ignored: not the chosen variant",
        "config.api_key": "k-123",
    }
    body, errors = schema_form.parse(fields, form)
    assert errors == {}
    assert body == {
        "account": "acme",
        "filters": {"channel": "social", "min_sessions": 25},
        "tags": ["spring", "launch"],
        "weights": [2, 0.25],
        "verbose": True,
        "ratio": 0.5,
        "paging": {"type": "page", "size": 50},
        "api_key": "k-123",
    }
    Shapes.model_validate(body)


def test_a_refusal_is_placed_beside_the_field_it_names() -> None:
    fields = _shapes()
    form = {
        "config.account": "acme",
        "config.filters.channel": "fax",
        "config.filters.min_sessions": "lots",
        "config.paging": "cursor",
    }
    body, errors = schema_form.parse(fields, form)
    assert errors == {}
    # Not-a-number goes through as typed: the schema says why, in the API's words.
    assert body["filters"]["min_sessions"] == "lots"
    with pytest.raises(ValidationError) as caught:
        Shapes.model_validate(body)
    named = _located(fields, "config", caught.value)
    assert set(named) == {
        "config.filters.channel",
        "config.filters.min_sessions",
        "config.paging.cursor.cursor_param",
    }
    # A location inside a field (a key of a name=value map) lands on that field.
    assert schema_form.locate(fields, "config", "config.tags.3") == "config.tags"
    assert schema_form.locate(fields, "config", "config") == "config"


def test_what_the_schema_cannot_judge_is_refused_by_the_form() -> None:
    schema = {
        "type": "object",
        "properties": {
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"description": "Any JSON"},
        },
    }
    fields = schema_form.form_fields(schema, "config")
    assert [f.kind for f in fields] == ["pairs", "json"]
    body, errors = schema_form.parse(
        fields, {"config.headers": "X-Team=growth\nno equals sign", "config.body": "{oops"}
    )
    assert set(errors) == {"config.headers", "config.body"}
    assert "name=value" in errors["config.headers"]
    assert "not valid JSON" in errors["config.body"]
    body, errors = schema_form.parse(
        fields, {"config.headers": "A=b=c\n", "config.body": '{"a": [1]}'}
    )
    assert (body, errors) == ({"headers": {"A": "b=c"}, "body": {"a": [1]}}, {})


def test_a_blank_secret_keeps_the_stored_one_and_a_typed_one_replaces_it() -> None:
    schema = {
        "type": "object",
        "properties": {
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
            "refresh_token": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
    }
    fields = schema_form.form_fields(schema, "credentials", secret=True)
    stored = {"client_id": "id-1", "client_secret": "old-secret", "refresh_token": None}
    assert schema_form.secret_state(fields, stored) == {
        "credentials.client_id": True,
        "credentials.client_secret": True,
        "credentials.refresh_token": False,
    }
    body, errors = schema_form.parse(
        fields, {"credentials.client_secret": " new-secret ", "credentials.client_id": ""}, stored
    )
    assert errors == {}
    assert body == {"client_id": "id-1", "client_secret": "new-secret"}
    # Nothing stored and nothing typed: nothing sent, so no credentials are made up.
    assert schema_form.parse(fields, {}) == ({}, {})


def test_enum_options_that_are_whitespace_survive_the_round_trip() -> None:
    config_schema, _, _ = _schemas("csv")
    fields = _by_name(schema_form.form_fields(config_schema, "config"))
    delimiter = fields["config.delimiter"]
    assert ("\t", "tab") in delimiter.choices
    body, _ = schema_form.parse([delimiter], {"config.delimiter": "\t"})
    assert body == {"delimiter": "\t"}
    body, _ = schema_form.parse([delimiter], {"config.delimiter": ""})
    assert body == {}  # not set: the connector sniffs it
