"""Redaction: no secret survives in an error text or a log line (SPEC section 4)."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import quote, quote_plus

import httpx
import pytest

from app.core.redact import (
    MASK,
    RedactingFilter,
    Redactor,
    install_redacting_filter,
    redact,
    register_secrets,
    secrets_in,
)


@pytest.fixture
def canary() -> str:
    """A fresh secret per test: the process-wide registry only ever grows."""
    return f"canary-{uuid.uuid4().hex}/+=&"


def test_redacts_raw_url_encoded_and_json_forms(canary: str) -> None:
    redactor = Redactor([canary])
    httpx_encoded = str(httpx.URL("https://h/x", params={"k": canary}))
    text = (
        f"raw {canary} | url {quote(canary, safe='')} | form {quote_plus(canary + ' x')} | "
        f'json {{"k": "{canary}"}} | partly {canary.replace("/", "%2f")} | {httpx_encoded}'
    )

    cleaned = redactor.redact(text)

    assert canary not in cleaned
    assert quote(canary, safe="") not in cleaned
    assert canary[len("canary-") : len("canary-") + 32] not in cleaned
    assert cleaned.count(MASK) == 6, cleaned


def _json(value: str, *, ascii_only: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)[1:-1]


@pytest.mark.parametrize(
    "spell",
    [
        lambda s: _json(s).replace("/", "\\/"),  # PHP's json_encode, Jackson's option
        lambda s: _json(s).replace("+", "\\u002B"),  # .NET's System.Text.Json
        lambda s: _json(s, ascii_only=True).replace("+", "\\u002b").replace("/", "\\u002f"),
        lambda s: _json(s, ascii_only=True),  # Python's default
    ],
    ids=["slash", "plus-upper-hex", "all-lower-hex", "python"],
)
def test_json_escaped_secrets_are_redacted(spell: Callable[[str], str]) -> None:
    secret = 'tok_3kP/9xQ+7mZ2wLr8vB4nT6yH1cJ5dF0s\u00e9"ç€'
    body = f'{{"detail": "bad key", "key": "{spell(secret)}"}}'

    cleaned = Redactor([secret]).redact(body)

    assert cleaned == f'{{"detail": "bad key", "key": "{MASK}"}}'


def test_basic_auth_header_form_is_redacted() -> None:
    redactor = Redactor()
    redactor.add_basic_auth("marketing-bot", "pa55word!")
    header = "Basic " + base64.b64encode(b"marketing-bot:pa55word!").decode()

    assert redactor.redact(f"Authorization: {header}") == f"Authorization: Basic {MASK}"


def test_short_values_are_ignored() -> None:
    redactor = Redactor(["abc", "", "us"])

    assert redactor.redact("abc us") == "abc us"
    assert redactor.secrets == frozenset()


def test_longest_secret_wins_when_one_contains_another() -> None:
    redactor = Redactor(["token", "token-with-suffix"])

    assert redactor.redact("x token-with-suffix y") == f"x {MASK} y"


def test_pem_key_lines_are_redacted_one_by_one() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
        "BKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
    )
    redactor = Redactor([pem])

    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in redactor.redact(
        "line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    )


def test_secrets_in_collects_string_leaves() -> None:
    credentials = {
        "api_key": "key-123456-us21",
        "service_account_info": {
            "type": "service_account",
            "private_key": "-----BEGIN-----xyz",
            "token_uri": "https://oauth2.googleapis.com/token",
            "scopes": ["a-scope-value"],
        },
        "port": 5432,
        "username": "bot-user",
        "password": "pw-9876",
    }

    found = secrets_in(credentials)

    assert "key-123456-us21" in found
    assert "-----BEGIN-----xyz" in found
    assert "a-scope-value" in found
    assert "pw-9876" in found
    assert base64.b64encode(b"bot-user:pw-9876").decode() in found
    # identifiers and endpoints are not secrets; masking them would shred every log line
    assert "service_account" not in found
    assert "https://oauth2.googleapis.com/token" not in found


class CapturingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes formatted lines and keeps the records, to check the fields formatters read."""

    def __init__(self, stream: io.StringIO) -> None:
        super().__init__(stream)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        super().emit(record)


LogStream = tuple[logging.Logger, io.StringIO, list[logging.LogRecord]]


@pytest.fixture
def log_stream() -> Iterator[LogStream]:
    stream = io.StringIO()
    handler = CapturingHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"krsync.test.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler.records
    logger.removeHandler(handler)


def test_filter_redacts_message_args_exception_and_extras(
    canary: str, log_stream: LogStream
) -> None:
    logger, stream, records = log_stream
    register_secrets([canary])

    logger.info(f"message carries {canary}")
    logger.warning("args carry %s and %r", canary, {"Authorization": f"Bearer {canary}"})
    try:
        raise RuntimeError(f"GET https://api.example.com/x?api_key={quote(canary, safe='')}")
    except RuntimeError:
        logger.exception("request failed")
    logger.info("stack", stack_info=True, extra={"unrelated": 1})
    logger.warning(
        "retry",
        extra={"caused_by": f"ConnectError('{canary}')", "args_": (repr(canary), 3)},
    )

    output = stream.getvalue()
    assert canary not in output
    assert canary not in repr([vars(r) for r in records])
    assert quote(canary, safe="") not in output
    assert output.count(MASK) >= 4
    assert "RuntimeError" in output  # the exception is still reported, only masked


def test_filter_covers_child_loggers_when_on_the_handler(canary: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    parent = logging.getLogger(f"krsync.parent.{uuid.uuid4().hex}")
    parent.addHandler(handler)
    parent.propagate = False
    register_secrets([canary])
    try:
        install_redacting_filter(parent)
        install_redacting_filter(parent)  # idempotent: one filter per handler
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1

        parent.getChild("connector.hubspot").error("token %s rejected", canary)
    finally:
        parent.removeHandler(handler)

    assert canary not in stream.getvalue()
    assert MASK in stream.getvalue()


def test_filter_survives_a_broken_format_string(canary: str, log_stream: LogStream) -> None:
    logger, stream, _ = log_stream
    register_secrets([canary])

    logger.info("two placeholders %s %s but one arg", canary)

    assert canary not in stream.getvalue()


def test_module_redact_uses_the_registry(canary: str) -> None:
    assert canary in redact(f"x {canary}")
    register_secrets([canary])
    assert redact(f"x {canary}") == f"x {MASK}"


def test_registry_is_thread_safe() -> None:
    values = [f"thread-secret-{uuid.uuid4().hex}" for _ in range(200)]

    def register(chunk: list[str]) -> None:
        for value in chunk:
            register_secrets([value])

    threads = [threading.Thread(target=register, args=(values[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(redact(value) == MASK for value in values)


def test_bounded_registry_drops_the_least_recently_registered() -> None:
    redactor = Redactor(max_secrets=2)
    redactor.add(["first-secret", "second-secret"])
    redactor.add(["first-secret"])  # re-registered: most recent again
    redactor.add(["third-secret"])

    assert redactor.secrets == {"first-secret", "third-secret"}
    assert redactor.redact("first-secret second-secret third-secret") == (
        f"{MASK} second-secret {MASK}"
    )
