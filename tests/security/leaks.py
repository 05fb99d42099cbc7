"""Canary secrets, and a search for any piece of them in what krsync lets out.

A canary is random, long and made of letters no hex digest, id or date contains, with the
characters that encodings treat differently (``/``, ``+``, ``=``) in between: so any 8
characters of it found in a response, a log record or a database column are a leak and not
chance, raw or percent-encoded.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from cryptography.fernet import InvalidToken
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine

from app.core.secrets import SecretBox, SecretKeyError
from connectors.testing import PIECE

_LETTERS = "ghijkmnopqrstuvwxyzGHJKLMNPQRSTUVWXYZ"


def canary() -> str:
    """35 characters: four runs of eight letters joined by ``/``, ``+`` and ``=``."""
    runs = ["".join(secrets.choice(_LETTERS) for _ in range(PIECE)) for _ in range(4)]
    return f"{runs[0]}/{runs[1]}+{runs[2]}={runs[3]}"


class Canaries:
    """A fresh canary per secret field; ``values`` names each by where it was put.

    ``derived`` holds secrets made from them (a ``Basic`` header's base64, a real private key's
    PEM lines): searched for too, but not stored as such. A value wrapped in ordinary text (an
    email address around a canary) is searched for by its canary alone (``cores``).
    """

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.derived: dict[str, str] = {}
        self.cores: dict[str, str] = {}

    def __call__(self, label: str, *, suffix: str = "") -> str:
        value = canary() + suffix
        self.values[label] = value
        return value

    def wrapped(self, label: str, template: str) -> str:
        """A canary inside ``template`` (its ``{}``), stored and echoed whole."""
        core = canary().replace("/", "-")
        self.cores[label] = core
        self.values[label] = value = template.format(core)
        return value

    def all(self) -> dict[str, str]:
        """Every secret as it is sent and stored: what a careless platform echoes."""
        return self.values | self.derived

    def searched(self) -> dict[str, str]:
        """Every secret as the search knows it: pieces of these must be nowhere."""
        return self.all() | self.cores


class Finder:
    """Every ``PIECE``-character piece of the secrets, raw and URL-encoded, by secret label."""

    def __init__(self, known: Mapping[str, str]) -> None:
        self.pieces: dict[str, str] = {}
        for label, value in known.items():
            for form in {value, quote(value, safe=""), quote_plus(value)}:
                for i in range(len(form) - PIECE + 1):
                    self.pieces[form[i : i + PIECE]] = label

    def find(self, text: str) -> list[str]:
        """Each secret a piece of which is in ``text``, with the piece and its context."""
        found: dict[str, str] = {}
        pieces = self.pieces
        for i in range(len(text) - PIECE + 1):
            label = pieces.get(text[i : i + PIECE])
            if label is not None and label not in found:
                found[label] = text[max(i - 60, 0) : i + PIECE + 60]
        return [f"{label}: …{context}…" for label, context in found.items()]


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def rendered(record: logging.LogRecord) -> str:
    """What a text handler writes for a record: its message, traceback and stack."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: what a handler would fall back to
        message = f"{record.msg!s} {record.args!r}"
    parts = [message, record.exc_text or "", record.stack_info or ""]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def extras(record: logging.LogRecord) -> str:
    """The ``extra=`` fields, which a JSON formatter writes out verbatim."""
    return repr({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})


def log_texts(records: Iterable[logging.LogRecord]) -> Iterator[tuple[str, str]]:
    for record in records:
        where = f"log {record.name}:{record.levelname}"
        yield where, rendered(record)
        yield f"{where} extras", extras(record)


def is_ciphertext(value: str, box: SecretBox) -> bool:
    """A Fernet token this server's key opens: the encrypted credentials, whatever the column."""
    if not value.startswith("gAAAAA"):
        return False
    try:
        box.decrypt_json(value)
    except (InvalidToken, SecretKeyError, ValueError):
        return False
    return True


def database_texts(engine: Engine, box: SecretBox) -> tuple[list[tuple[str, str]], list[str]]:
    """(where, text) of every string, JSON or binary value in every table, found by reflection;
    and the Fernet tokens left out of it, decrypted."""
    metadata = MetaData()
    metadata.reflect(engine)
    texts: list[tuple[str, str]] = []
    opened: list[str] = []
    with engine.connect() as conn:
        for table in metadata.tables.values():
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    where = f"{table.name}.{column}"
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str) and is_ciphertext(value, box):
                        opened.append(json.dumps(box.decrypt_json(value)))
                    elif isinstance(value, str):
                        texts.append((where, value))
                    elif isinstance(value, dict | list):
                        texts.append((where, json.dumps(value, default=str)))
    return texts, opened


def leaks(finder: Finder, texts: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{where}: {hit}" for where, text in texts for hit in finder.find(text)]


def response_texts(responses: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """Body and headers of each ``httpx.Response`` krsync answered."""
    for response in responses:
        where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        yield where, response.text
        yield f"{where} headers", "\n".join(f"{k}: {v}" for k, v in response.headers.items())
