"""The default response classifier (connectors/errors.py): a failed answer becomes the error the
engine acts on, with the platform's words masked, and a connector's hints say what to fix.

Statuses as RFC 9110 section 15 means them (401 credentials, 403 permission, 408 and 5xx worth a
retry) and RFC 6585 section 4 (429 Too Many Requests, with an optional ``Retry-After``).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    RateLimited,
    RetriableError,
    TokenRefreshError,
)
from connectors.errors import (
    Classifier,
    Hint,
    Refusal,
    kind_of,
    raise_failure,
    read_error,
    refresh_refused,
)

SECRET = "sk_live_0123456789abcdef"


def _mask(text: str) -> str:
    return text.replace(SECRET, "***")


def _answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "https://api.example.test/v1/things")
    if body is None:
        return httpx.Response(status, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


PLAIN = Classifier("Example")


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (401, ConnectorAuthError, "auth"),
        (403, ConnectorAuthError, "permission"),
        (400, ConnectorConfigError, "config"),
        (404, ConnectorConfigError, "config"),
        (408, RetriableError, "retriable"),
        (429, RateLimited, "rate_limited"),
        (500, RetriableError, "retriable"),
        (503, RetriableError, "retriable"),
    ],
)
def test_the_status_decides_the_kind_without_hints(
    status: int, error: type[Exception], kind: str
) -> None:
    raised = PLAIN(_answer(status, {"message": "what went wrong"}), None)

    assert type(raised) is error
    assert kind_of(status) == kind
    assert "Example" in str(raised)
    assert "what went wrong" in str(raised)


def test_a_config_error_is_no_auth_error() -> None:
    assert not isinstance(PLAIN(_answer(404, {"message": "no"}), None), ConnectorAuthError)


def test_a_429_carries_the_wait_the_platform_asked_for() -> None:
    raised = PLAIN(_answer(429, {"message": "slow down"}, **{"Retry-After": "17"}), None)

    assert isinstance(raised, RateLimited)
    assert raised.retry_after == 17.0


def test_a_connectors_own_wait_reader_and_a_wait_given_at_the_call() -> None:
    reset = Classifier("Example", wait=lambda response: 5.0)
    assert getattr(reset(_answer(429), None), "retry_after", None) == 5.0
    assert getattr(reset(_answer(429), None, wait=9.0), "retry_after", None) == 9.0


def test_the_platforms_words_are_masked_and_cut() -> None:
    long = f"token {SECRET} refused " + "x" * 600
    raised = PLAIN(_answer(401, {"error": {"message": long, "code": f"BAD_{SECRET}"}}), _mask)

    assert SECRET not in str(raised)
    assert "token *** refused" in str(raised)
    assert len(str(raised)) < 400


def test_codes_are_masked_before_a_hint_quotes_them() -> None:
    quoting = Classifier("Example", {"config": "refused ({code})"})
    raised = quoting(_answer(400, {"error": {"message": "m", "code": SECRET}}), _mask)
    assert str(raised) == "refused (***)"


def test_an_empty_body_is_quoted_as_its_status() -> None:
    assert str(PLAIN(_answer(404), None)) == "Example refused the request (404): HTTP 404"


@pytest.mark.parametrize(
    ("body", "codes", "words"),
    [
        ({"error": {"message": "bad metric", "code": 100}}, ["100"], "bad metric"),
        ({"error": "invalid_grant", "error_description": "expired"}, ["invalid_grant"], "expired"),
        ({"message": "nope"}, [], "nope"),
        ({"title": "Resource Not Found", "detail": "no list"}, [], "Resource Not Found: no list"),
    ],
)
def test_the_default_reader_knows_the_common_envelopes(
    body: object, codes: list[str], words: str
) -> None:
    found, said = read_error(_answer(400, body), body)
    assert (list(found), said) == (codes, words)


VENDOR = Classifier(
    "Vendor",
    {
        "TOKEN_EXPIRED": Hint("the token expired ({said}): reconnect", ConnectorAuthError),
        403: "Vendor refused account `{config.account_id}` ({said}): grant it read access",
        (404, 410): "Vendor has nothing at that address: check `base_url`",
        "retriable": "Vendor is down ({status})",
        429: lambda refusal: None if refusal.code != "DAILY" else RetriableError("daily cap"),
    },
)


@dataclass
class _Config:
    account_id: str


def test_a_vendor_code_comes_before_the_status() -> None:
    raised = VENDOR(_answer(400, {"error": {"message": "old", "code": "TOKEN_EXPIRED"}}), None)
    assert isinstance(raised, ConnectorAuthError)
    assert str(raised) == "the token expired (old): reconnect"


def test_a_status_hint_names_the_sources_fields() -> None:
    raised = VENDOR(_answer(403, {"message": "denied"}), None, config=_Config("acc-7"))
    assert isinstance(raised, ConnectorAuthError)
    assert str(raised) == "Vendor refused account `acc-7` (denied): grant it read access"


@pytest.mark.parametrize("status", [404, 410])
def test_a_tuple_of_keys_shares_one_hint(status: int) -> None:
    assert str(VENDOR(_answer(status), None)) == (
        "Vendor has nothing at that address: check `base_url`"
    )


def test_a_kind_hint_covers_every_status_of_the_kind() -> None:
    for status in (500, 502, 408):
        raised = VENDOR(_answer(status), None)
        assert isinstance(raised, RetriableError)
        assert str(raised) == f"Vendor is down ({status})"


def test_a_hint_that_answers_none_leaves_it_to_the_default() -> None:
    daily = VENDOR(_answer(429, {"error": {"message": "m", "code": "DAILY"}}), None)
    assert type(daily) is RetriableError
    assert str(daily) == "daily cap"
    other = VENDOR(_answer(429, {"message": "burst"}), None)
    assert isinstance(other, RateLimited)
    assert str(other) == "Vendor asks to slow down: burst"


def test_hints_given_at_the_call_win_over_the_table() -> None:
    oauth = {403: "Vendor refused the OAuth grant ({said}): reconnect"}
    raised = VENDOR(_answer(403, {"message": "scope"}), None, hints=oauth)
    assert str(raised) == "Vendor refused the OAuth grant (scope): reconnect"


SCOPED = Classifier(
    "Scoped",
    {
        404: (
            Hint("no object {path} ({said}): check its name", path=r"/describe$"),
            Hint("no list ({said}): check `list_id`", path="/lists/"),
            "nothing at {path}: check `base_url`",
        ),
        403: Hint("no access to the list", path="/lists/"),
    },
)


def _at(status: int, path: str) -> httpx.Response:
    request = httpx.Request("GET", f"https://api.example.test{path}")
    return httpx.Response(status, json={"message": "gone"}, request=request)


def test_a_hint_with_a_path_answers_for_that_path_only() -> None:
    assert str(SCOPED(_at(404, "/v1/sobjects/Deal/describe"), None)) == (
        "no object /v1/sobjects/Deal/describe (gone): check its name"
    )
    assert str(SCOPED(_at(404, "/3.0/lists/abc/activity"), None)) == (
        "no list (gone): check `list_id`"
    )
    # Neither path: the next rule of the tuple; with no rule left, the kind's default.
    assert (
        str(SCOPED(_at(404, "/3.0/reports"), None)) == "nothing at /3.0/reports: check `base_url`"
    )
    assert str(SCOPED(_at(403, "/3.0/lists/abc"), None)) == "no access to the list"
    assert str(SCOPED(_at(403, "/3.0/reports"), None)) == "Scoped refused access (403): gone"


def test_a_field_named_path_given_at_the_call_wins_over_the_requests() -> None:
    raised = SCOPED(_at(404, "/3.0/reports"), None, path="the reports")
    assert str(raised) == "nothing at the reports: check `base_url`"


def test_a_response_without_its_request_has_no_path() -> None:
    assert str(SCOPED(httpx.Response(404, json={"message": "gone"}), None)) == (
        "nothing at : check `base_url`"
    )


def test_words_given_at_the_call_replace_the_body() -> None:
    raised = PLAIN(_answer(502, {"message": "ignored"}), None, said="GET /x answered 502")
    assert str(raised) == "Example is having trouble (502): GET /x answered 502"


def test_a_refusal_built_by_hand_is_classified_the_same_way() -> None:
    """For clients that raise their own exceptions (Google's official library): the connector
    reads status and words from the exception and classifies them like an answer."""
    raised = VENDOR.classify(Refusal(status=410, said="gone"))
    assert str(raised) == "Vendor has nothing at that address: check `base_url`"


class _Client:
    """The engine's client as ``raise_failure`` reads it: its own words for a failure, and the
    wait it parsed from ``Retry-After`` (RFC 6585 section 4)."""

    redact = staticmethod(_mask)

    def raise_for_status(self, response: httpx.Response) -> None:
        error = Exception()
        error.message = f"GET {response.request.url.path} answered {response.status_code}"  # type: ignore[attr-defined]
        error.retry_after = 7.0  # type: ignore[attr-defined]
        raise error


def test_raise_failure_passes_a_success_and_words_a_failure_as_the_client_does() -> None:
    raise_failure(PLAIN, _Client(), _answer(200, {"ok": True}))  # type: ignore[arg-type]
    with pytest.raises(RateLimited) as limited:
        raise_failure(PLAIN, _Client(), _answer(429))  # type: ignore[arg-type]
    assert limited.value.retry_after == 7.0
    assert "GET /v1/things answered 429" in limited.value.message


class _EndpointDown(TokenRefreshError):
    @property
    def transient(self) -> bool:
        return True


def test_a_refused_refresh_needs_a_person_and_an_endpoint_down_another_run() -> None:
    refused = refresh_refused(TokenRefreshError("invalid_grant"), "Pipedrive", "reconnect it")
    assert isinstance(refused, ConnectorAuthError)
    assert str(refused) == "Pipedrive refused to refresh the access token: reconnect it"
    down = refresh_refused(_EndpointDown("503"), "Pipedrive", "reconnect it")
    assert isinstance(down, RetriableError)
    assert not isinstance(down, ConnectorAuthError)
    assert "Pipedrive's token endpoint is unavailable" in str(down)
