"""Keeping secrets out of logs, error messages and sync-run records.

Vendor errors love to echo what they were sent: a URL with ``?api_key=…``, an
``Authorization`` header, a token in a JSON error body. Rather than trusting every code path
to be careful, every text that leaves the process (a log line, ``SyncRun.error``, an API
error body) is passed through a :class:`Redactor` that knows the secret values themselves.

Two scopes:

- a :class:`Redactor` per HTTP client, holding that source's credentials, used to build
  error messages;
- a process-wide registry (:func:`register_secrets`) read by :class:`RedactingFilter`,
  because a log handler cannot know which source a log line came from.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "RedactingFilter",
    "Redactor",
    "install_redacting_filter",
    "redact",
    "redact_json",
    "register_secrets",
    "secrets_in",
]

MASK = "***"
#: Shorter values are ignored: masking "1" or "us" would shred ordinary text while protecting
#: nothing a brute force would not find anyway.
MIN_SECRET_LENGTH = 4
#: PEM bodies are logged line by line in some tracebacks; lines this long are masked one by one.
_MIN_LINE_LENGTH = 16

# Credential keys whose values are identifiers or endpoints, not secrets. Masking them would
# shred every log line that mentions, say, "googleapis.com" (the registry is process-wide)
# while protecting nothing.
_NOT_SECRET_KEYS = frozenset(
    {
        "auth_provider_x509_cert_url",
        "auth_uri",
        "client_x509_cert_url",
        "data_center",
        "expires_at",
        "expires_in",
        "instance_url",
        "scope",
        "token_type",
        "token_uri",
        "type",
        "universe_domain",
    }
)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# JSON's two-character escapes; "/" may be escaped as "\\/" (PHP and some Java encoders do).
_JSON_SHORT = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _json_escapes(char: str) -> list[str]:
    """Regexes for the ways a JSON encoder may escape ``char`` (``\\uXXXX`` in either case)."""
    options = [re.escape(_JSON_SHORT[char])] if char in _JSON_SHORT else []
    units = char.encode("utf-16-be")
    hexes = [units[i : i + 2].hex() for i in range(0, len(units), 2)]  # a surrogate pair or one
    options.append("(?i:" + "".join(rf"\\u{code}" for code in hexes) + ")")
    return options


def _char_pattern(char: str) -> str:
    """A character, raw, percent-encoded or JSON-escaped: encoders disagree on what to escape.

    Unreserved characters are matched raw only: no encoder escapes them, and a whole
    alternation per letter would slow every log line down for nothing.
    """
    if char in _UNRESERVED:
        return re.escape(char)
    encoded = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
    options = [re.escape(char), f"(?i:{re.escape(encoded)})", *_json_escapes(char)]
    if char == " ":
        options.append(r"\+")  # form encoding
    return f"(?:{'|'.join(options)})"


@functools.lru_cache(maxsize=8192)
def _patterns(secret: str) -> frozenset[str]:
    """Regexes for the spellings under which a secret shows up in text we produce or receive.

    Raw, URL-encoded and JSON-escaped, in any mix of escaped and literal characters (``quote``,
    ``quote_plus``, httpx and JSON encoders each escape a different set: ``/`` as ``\\/``, ``+``
    as ``\\u002B``), and for multi-line values such as PEM keys each long line on its own.
    """
    patterns = {"".join(_char_pattern(char) for char in secret)}
    if "\n" in secret:
        patterns.update(
            re.escape(line.strip())
            for line in secret.splitlines()
            if len(line.strip()) >= _MIN_LINE_LENGTH
        )
    return frozenset(patterns)


def basic_auth_form(username: str, password: str) -> str:
    """The base64 credential of an ``Authorization: Basic`` header."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class Redactor:
    """Replaces known secret values (and their encoded forms) with ``***``.

    Thread-safe: the process-wide registry is fed from the event loop and from worker threads
    and read by logging handlers in any thread. The regex is rebuilt lazily, on the first
    ``redact`` after a change, so registering many values costs one compilation.

    ``max_secrets`` bounds a long-lived registry that keeps receiving refreshed OAuth tokens:
    the least recently *registered* values go first, and every client re-registers its
    source's current credentials when it is built, so live secrets stay in.
    """

    def __init__(self, secrets: Iterable[str] = (), *, max_secrets: int | None = None) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, None] = {}  # an ordered set, oldest registration first
        self._max_secrets = max_secrets
        self._pattern: re.Pattern[str] | None = None
        self._stale = False
        self.add(secrets)

    @property
    def secrets(self) -> frozenset[str]:
        """The secret values held (not their encoded forms)."""
        with self._lock:
            return frozenset(self._values)

    def add(self, secrets: Iterable[str]) -> None:
        """Hold more secrets, e.g. a freshly refreshed OAuth token."""
        values = [v for v in secrets if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH]
        with self._lock:
            for value in values:
                if value in self._values:
                    del self._values[value]  # re-insert below: now the most recent
                else:
                    self._stale = True
                self._values[value] = None
            if self._max_secrets is not None:
                while len(self._values) > self._max_secrets:
                    del self._values[next(iter(self._values))]
                    self._stale = True

    def add_basic_auth(self, username: str, password: str) -> None:
        """Hold a username/password pair, including its ``Basic`` header form."""
        self.add([password, basic_auth_form(username, password)])

    def _compiled(self) -> re.Pattern[str] | None:
        if not self._stale:
            return self._pattern
        with self._lock:
            if self._stale:
                lengths: dict[str, int] = {}  # regex -> length of the longest secret it spells
                for value in self._values:
                    for pattern in _patterns(value):
                        lengths[pattern] = max(len(value), lengths.get(pattern, 0))
                # Longest first, so a secret that contains another one is masked whole.
                ordered = sorted(lengths, key=lambda pattern: (-lengths[pattern], pattern))
                self._pattern = re.compile("|".join(ordered)) if ordered else None
                self._stale = False
            return self._pattern

    def redact(self, text: str) -> str:
        """``text`` with every held secret replaced by ``***``."""
        if not text:
            return text
        pattern = self._compiled()
        return pattern.sub(MASK, text) if pattern is not None else text

    def finds(self, text: str) -> bool:
        """Whether ``text`` holds a held secret, in any spelling :meth:`redact` would mask."""
        pattern = self._compiled() if text else None
        return pattern is not None and pattern.search(text) is not None


def secrets_in(obj: object) -> list[str]:
    """The string leaves of a credentials structure, the values to redact.

    Everything is treated as secret except a few known identifier keys: credentials schemas
    differ per connector, and over-masking a log line is cheaper than leaking a token. A
    mapping holding both ``username`` and ``password`` also yields the ``Basic`` header form.
    """
    found: list[str] = []

    def walk(node: object, key: str | None) -> None:
        if isinstance(node, str):
            if key not in _NOT_SECRET_KEYS and len(node) >= MIN_SECRET_LENGTH:
                found.append(node)
        elif isinstance(node, Mapping):
            for child_key, child in node.items():
                walk(child, str(child_key))
            username, password = node.get("username"), node.get("password")
            if isinstance(username, str) and isinstance(password, str):
                found.append(basic_auth_form(username, password))
        elif isinstance(node, list | tuple | set | frozenset):
            for child in node:
                walk(child, key)

    walk(obj, None)
    return found


_registry = Redactor(max_secrets=4096)


def register_secrets(values: Iterable[str]) -> None:
    """Make the logging filter mask these values from now on, in every thread."""
    _registry.add(values)


def redact(text: str) -> str:
    """``text`` masked against the process-wide registry (for ``SyncRun.error`` and the like)."""
    return _registry.redact(text)


def redact_json(value: Any) -> Any:
    """``value`` (JSON a connector built from responses) with every string in it masked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record it sees.

    The message is rendered (``msg % args``) before masking because a secret often hides in
    an argument's ``repr`` (an exception, a URL, a dict of headers); the rendered, masked text
    replaces ``msg`` and ``args`` is cleared. Exception and stack text are rendered and masked
    the same way, and ``exc_info`` dropped, so no formatter can re-render the raw exception.

    Attach it to *handlers* (see :func:`install_redacting_filter`): a filter on a logger does
    not see records propagated from its children.
    """

    def __init__(self, redactor: Redactor | None = None, name: str = "") -> None:
        super().__init__(name)
        self._redactor = redactor if redactor is not None else _registry

    def filter(self, record: logging.LogRecord) -> bool:
        mask = self._redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not let the raw args through
            message = f"{record.msg!s} {record.args!r}"
        record.msg = mask(message)
        record.args = None
        if record.exc_info:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        # `extra=` fields reach JSON formatters verbatim; stamina's retry log, for one, puts
        # the repr of the failing exception there.
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_RECORD_ATTRS:
                record.__dict__[key] = _mask_value(value, mask)
        return True


_STANDARD_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


def _mask_value(value: object, mask: Callable[[str], str]) -> object:
    """Masks strings, and strings one level down in containers; other values pass through."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, tuple | list):
        return type(value)(mask(item) if isinstance(item, str) else item for item in value)
    if isinstance(value, dict):
        return {k: mask(v) if isinstance(v, str) else v for k, v in value.items()}
    return value


def install_redacting_filter(logger: logging.Logger | None = None) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of ``logger`` (default: root).

    Call it after logging is configured; handlers added later need ``addFilter`` themselves.
    """
    target = logger if logger is not None else logging.getLogger()
    flt = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(flt)
    return flt
