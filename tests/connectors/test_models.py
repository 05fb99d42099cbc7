"""The shared model parts (``connectors.models``) on their own: what each accepts, what it
refuses and the words of the refusal, since every connector's form and errors reuse them."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from connectors.models import (
    Epoch,
    HttpAddress,
    OAuthCredentials,
    Params,
    RootUrl,
    Strict,
    StrptimeFormat,
    catalogue,
    has_password,
    http_root,
    matching,
    numeric_id,
    root_field,
)


class Shapes(Strict):
    page_id: Annotated[str, numeric_id("urn:li:organization:", example="2414183")] = "1"
    version: Annotated[str, matching(r"v\d+\.0", "`version` is like v60.0")] = "v60.0"
    url: HttpAddress = "https://example.com"
    date_format: StrptimeFormat | None = None
    when: Epoch | None = None


def _refusal(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Shapes.model_validate(fields)
    return str(caught.value.errors()[0]["msg"])


def test_an_id_pasted_as_a_number_or_with_its_prefix_is_read_as_its_digits() -> None:
    assert Shapes(page_id=2414183).page_id == "2414183"  # type: ignore[arg-type]
    assert Shapes(page_id=" urn:li:organization:42 ").page_id == "42"
    assert "`page_id` is a numeric id, e.g. 2414183" in _refusal(page_id="acme")
    assert "numeric id" in _refusal(page_id="٣")  # digits, but not ASCII ones


def test_a_checked_string_is_stripped_and_refused_in_its_own_words() -> None:
    assert Shapes(version=" v61.0 ").version == "v61.0"
    assert "`version` is like v60.0" in _refusal(version="61")


def test_addresses_formats_and_roots() -> None:
    assert Shapes(url=" http://h/x ").url == "http://h/x"
    assert "`url` must be an http:// or https:// address" in _refusal(url="ftp://h")
    assert "`date_format` is a strptime format" in _refusal(date_format="dd/mm/yyyy")
    assert http_root("https://h/api/ ") == "https://h/api"
    assert http_root("https://h/api?x=1") is None
    assert http_root(None) is None
    assert has_password("https://u:p@h/")
    assert not has_password("https://u@h/")
    assert not has_password("http://[::1")  # unreadable: no password found in it


def test_a_moment_is_unix_seconds_or_an_iso_date() -> None:
    assert Shapes(when="1700000000").when == 1_700_000_000
    assert Shapes(when="2026-12-31").when == 1_798_675_200  # midnight UTC
    assert Shapes(when="2026-12-31T01:00:00+01:00").when == 1_798_675_200
    assert "Unix seconds or an ISO date" in _refusal(when="soon")


def test_strict_models_refuse_unknown_fields_and_params_are_frozen() -> None:
    assert _refusal(colour="red").startswith("Extra inputs")

    class Some(Params):
        n: int = 1

    with pytest.raises(ValidationError):
        Some(n=2).n = 3  # type: ignore[misc]


def test_a_refresh_token_needs_the_client() -> None:
    OAuthCredentials(access_token="a")
    OAuthCredentials(refresh_token="r", client_id="c", client_secret="s")
    with pytest.raises(ValidationError, match="`client_id` and `client_secret`"):
        OAuthCredentials(refresh_token="r", client_id="c")
    assert OAuthCredentials(expires_at="2026-12-31").expires_at == 1_798_675_200  # type: ignore[arg-type]


def test_a_base_url_field_defaults_to_the_root_or_names_what_it_replaces() -> None:
    class Config(Strict):
        fixed: str = root_field("https://api.example.com")
        worked_out: str | None = root_field("https://{dc}.example.com", unset=True)

    fields = Config.model_json_schema()["properties"]
    assert fields["fixed"]["default"] == "https://api.example.com"
    assert "replaces it" in fields["fixed"]["description"]
    assert fields["worked_out"]["default"] is None
    assert fields["worked_out"]["description"].startswith("Replaces https://{dc}.example.com")


def test_a_catalogue_from_a_table_shares_fields_and_takes_each_metrics_own() -> None:
    specs = catalogue(
        {"clicks": ("Clicks", "clicks"), "ctr": ("Click rate", "ratio", {"additive": False})},
        describe="{}, a day",
        filters={"page": frozenset({"eq"})},
    )
    clicks, ctr = specs
    assert (clicks.name, clicks.description, clicks.unit) == ("clicks", "Clicks, a day", "clicks")
    assert clicks.additive
    assert not ctr.additive
    assert ctr.filters == clicks.filters == {"page": frozenset({"eq"})}
    assert "sum" not in ctr.aggregations


def test_numbers_given_where_ids_go_keep_their_field_name() -> None:
    class Two(Strict):
        a: Annotated[str, numeric_id(example="1")] = Field("1")
        b: Annotated[str, numeric_id(example="2")] | None = None

    with pytest.raises(ValidationError, match="`b` is a numeric id"):
        Two(b="x")


def test_a_root_url_takes_no_query_and_loses_its_trailing_slash() -> None:
    class Rooted(Strict):
        base_url: RootUrl | None = None

    assert Rooted(base_url="https://proxy.example/api/").base_url == "https://proxy.example/api"
    with pytest.raises(ValidationError, match="`base_url` must be an http:// or https:// address"):
        Rooted(base_url="ftp://files.example")
    with pytest.raises(ValidationError, match="with no query"):
        Rooted(base_url="https://proxy.example/?token=1")
