"""Two contract rules on a source's credentials, run against every connector that holds one.

**No error quotes a piece of a secret, wherever it cuts the platform's answer.** Every
connector of the contract suite with HTTP and a credential is made to fail: each request
answers 400 with a body, in the error shapes platforms use (plain text, ``message``,
Salesforce's list, Google's and Meta's ``error`` envelope, RFC 7807 problems, Pipedrive's
``error``/``error_info``, OAuth's ``error_description``), that echoes one of the source's
credentials. Error messages quote the start of such a body, so the echo is a run of the
credential with one space between copies, started at every offset of one period: whatever
length a connector cuts its quote to, some copy is split by the cut at every possible
character. Cut before masking, that copy leaks all its characters up to the cut; the test
finds any 8-character piece of the credential in what ``check()`` and ``fetch()`` give.
With ``token``, the OAuth token endpoints fail the same way (refresh errors); otherwise they
answer as the kit's platform does, so the platform's own API calls are the ones failing.

**No credential follows a redirect to another origin.** httpx drops ``Authorization`` on such a
redirect but keeps every other header (Pipedrive's ``x-api-token``, ``rest_json``'s
``X-API-Key``), and a body resent by a 307. Every platform call is redirected to another host:
the connector fails, naming it, and that host sees no request at all (following without the
credentials is a source's explicit choice, not a default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import respx

from app.core.redact import secrets_in
from connectors.base import ConnectorError, Window
from connectors.registry import get_connector, load_connectors
from tests.connectors import engine_client
from tests.connectors.acme import AcmeConnector
from tests.connectors.kits import KITS, Kit
from tests.connectors.test_contract import query_of
from tests.security.leaks import leaked, split_masks

pytestmark = pytest.mark.anyio

WINDOW = Window(date(2026, 7, 1), date(2026, 7, 10))
#: Copies of the credential in a body: past the longest quote a connector makes (300).
COPIES = 40

Shape = Callable[[str], httpx.Response]
SHAPES: dict[str, Shape] = {
    "text": lambda said: httpx.Response(400, text=said),
    "message": lambda said: httpx.Response(400, json={"message": said, "category": "VALIDATION"}),
    "salesforce": lambda said: httpx.Response(
        400, json=[{"message": said, "errorCode": "MALFORMED_QUERY"}]
    ),
    "envelope": lambda said: httpx.Response(
        400, json={"error": {"code": 100, "message": said, "status": "INVALID_ARGUMENT"}}
    ),
    "problem": lambda said: httpx.Response(
        400, json={"title": "Invalid Request", "detail": said, "type": "about:blank"}
    ),
    "pipedrive": lambda said: httpx.Response(
        400, json={"success": False, "error": said, "error_info": "see the API reference"}
    ),
    "oauth": lambda said: httpx.Response(
        400, json={"error": "invalid_request", "error_description": said}
    ),
}


def echoed_secret(kit: Kit) -> str | None:
    """The credential a platform echoes in the test: the longest that reads as a token."""
    found = [s for s in secrets_in(kit.credentials) if 12 <= len(s) <= 80 and "\n" not in s]
    return max(found, key=len, default=None)


def _cases() -> Iterator[Any]:
    for key in sorted({*load_connectors(), AcmeConnector.key}):
        kit = KITS.get(key)
        if kit is None or not kit.http or echoed_secret(kit) is None:
            continue  # no platform to answer, or nothing to leak: test_contract covers the kit
        yield pytest.param(key, False, id=key)
        refreshes = {"refresh_token", "service_account_info"} & set(kit.credentials)
        if refreshes:
            yield pytest.param(key, True, id=f"{key}-token")


def _is_token_request(request: httpx.Request) -> bool:
    return b"grant_type=" in request.content


@pytest.fixture(autouse=True)
def engine_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with engine_client.engine_env(monkeypatch, attempts=1):
        yield


@pytest.mark.parametrize(("key", "token"), list(_cases()))
async def test_errors_quote_no_piece_of_a_secret_wherever_they_cut(key: str, token: bool) -> None:
    kit = KITS[key]
    secret = echoed_secret(kit)
    assert secret is not None
    assert kit.mock is not None
    cls = get_connector(key)
    body: list[httpx.Response] = []

    def fail(request: httpx.Request) -> httpx.Response | None:
        if _is_token_request(request) and not token:
            return None  # on to the kit's platform, which hands out a token
        return body[0]

    said: list[str] = []
    query = query_of(key, kit.query)
    # No pacing: the test is about what errors say, and it makes ~1,000 of them. One connector
    # serves them all: none keeps state from a 400 that would change how it words the next.
    with respx.mock(assert_all_called=False) as router:
        router.route().mock(side_effect=fail)
        kit.mock(router, "data")
        async with engine_client.connected(
            cls, kit.config, kit.credentials, rate_per_second=None
        ) as (connector, _):
            for phase in range(len(secret) + 1):
                echo = "e" * phase + " ".join([secret] * COPIES)
                for shape in SHAPES.values():
                    body[:] = [shape(echo)]
                    said += await _outcome(connector.check())
                    said += await _outcome(connector.fetch([query], WINDOW))

    assert said, "the connector never failed"
    for text in said:
        assert leaked(text, secret) == [], text
        assert split_masks(text) == [], text


ELSEWHERE = "elsewhere.krsync.test"


@pytest.mark.parametrize(("key", "token"), [c for c in _cases() if not c.values[1]])
async def test_no_credential_follows_a_redirect_to_another_origin(key: str, token: bool) -> None:
    kit = KITS[key]
    assert kit.mock is not None

    def moved(request: httpx.Request) -> httpx.Response | None:
        if _is_token_request(request) or request.url.host == ELSEWHERE:
            return None  # the kit's platform hands out a token; the other host answers below
        return httpx.Response(307, headers={"Location": f"https://{ELSEWHERE}/moved"})

    with respx.mock(assert_all_called=False) as router:
        router.route().mock(side_effect=moved)
        elsewhere = router.route(host=ELSEWHERE).mock(return_value=httpx.Response(200, json={}))
        kit.mock(router, "data")
        async with engine_client.connected(
            get_connector(key), kit.config, kit.credentials, rate_per_second=None
        ) as (connector, _):
            for call in (connector.check(), connector.fetch([query_of(key, kit.query)], WINDOW)):
                with pytest.raises(Exception) as refused:  # noqa: PT011  (whatever the wording)
                    await call
                assert ELSEWHERE in str(refused.value), refused.value

    assert not elsewhere.called


async def _outcome(call: Any) -> list[str]:
    """Every text a check or fetch hands the engine, raised or returned."""
    try:
        result = await call
    except ConnectorError as exc:
        return [exc.message, str(exc)]
    except Exception as exc:  # the engine's HTTP errors: not connector errors, still shown
        return [str(getattr(exc, "message", exc)), str(exc)]
    texts = [getattr(result, "message", "")]
    texts += list(getattr(result, "warnings", []))
    texts += list(getattr(result, "query_errors", {}).values())
    texts += list(getattr(result, "notices", []))
    return [t for t in texts if t]
