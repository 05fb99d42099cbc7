"""Discovery of installed connectors through the ``krsync.connectors`` entry-point group.

Entry points let a third-party package add a connector by declaring it in its own metadata,
without touching krsync. Discovery never raises: one broken plugin must not take the API or the
nightly sync of every other source down with it, so it is skipped with a warning instead.
"""

from __future__ import annotations

import inspect
import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from connectors.base import Connector

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConnectorClass",
    "UnknownConnectorError",
    "clear_cache",
    "describe_connectors",
    "get_connector",
    "load_connectors",
]

ENTRY_POINT_GROUP = "krsync.connectors"

ConnectorClass = type[Connector[Any, Any]]

logger = logging.getLogger(__name__)

_cache: dict[str, ConnectorClass] | None = None
#: Connectors imported one by one by `get_connector` before any full discovery.
_by_key: dict[str, ConnectorClass] = {}


class UnknownConnectorError(KeyError):
    """No installed connector has this key; the message lists those that are."""

    def __init__(self, key: str, known: list[str]) -> None:
        listed = ", ".join(f"`{k}`" for k in known) or "none"
        super().__init__(f"no connector `{key}` is installed; installed: {listed}")
        self.key = key
        self.known = known

    def __str__(self) -> str:
        # KeyError quotes its argument as a repr; the message is meant to be read.
        return str(self.args[0])


def load_connectors(*, refresh: bool = False) -> dict[str, ConnectorClass]:
    """Installed connectors by key; cached, because scanning metadata touches every sys.path entry.

    ``refresh=True`` rescans, for a plugin installed after the first call (and for tests).
    """
    global _cache
    if _cache is None or refresh:
        _cache = _discover()
    return dict(_cache)


def clear_cache() -> None:
    """Forget the discovered connectors so the next lookup rescans."""
    global _cache
    _cache = None
    _by_key.clear()


def get_connector(key: str) -> ConnectorClass:
    """The connector class registered under ``key``; an ``UnknownConnectorError`` lists the rest.

    Until something asks for the whole catalogue, only the entry point named ``key`` is
    imported: a sync of HubSpot sources has no use for the Google client libraries, which
    weigh tens of megabytes in every worker.
    """
    if _cache is None:
        cls = _by_key.get(key) or _load_named(key)
        if cls is not None:
            return cls
    found = load_connectors()
    try:
        return found[key]
    except KeyError:
        raise UnknownConnectorError(key, sorted(found)) from None


def _load_named(key: str) -> ConnectorClass | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name != key:
            continue  # read from metadata only: nothing of it is imported
        cls = _load(ep)
        if cls is not None and cls.key == key:
            _by_key[key] = cls
            return cls
    return None


def describe_connectors() -> list[dict[str, Any]]:
    """The body items of ``GET /api/v1/connectors``, in key order."""
    return [cls.describe() for _, cls in sorted(load_connectors().items())]


def _discover() -> dict[str, ConnectorClass]:
    found: dict[str, ConnectorClass] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
        cls = _load(ep)
        if cls is None:
            continue
        if cls.key != ep.name:
            logger.warning(
                "connector entry point %r names class key %r; registering it as %r",
                ep.name,
                cls.key,
                cls.key,
            )
        other = found.get(cls.key)
        if other is not None and other is not cls:
            logger.warning(
                "connector key %r is claimed by %s and %s; keeping the first",
                cls.key,
                _qualname(other),
                _qualname(cls),
            )
            continue
        found[cls.key] = cls
    return found


def _load(ep: EntryPoint) -> ConnectorClass | None:
    try:
        obj = ep.load()
    except Exception as exc:  # any import-time failure of a plugin is the plugin's problem
        logger.warning("skipping connector entry point %r (%s): %r", ep.name, ep.value, exc)
        return None
    if not (inspect.isclass(obj) and issubclass(obj, Connector)):
        logger.warning(
            "skipping connector entry point %r (%s): not a Connector subclass", ep.name, ep.value
        )
        return None
    if inspect.isabstract(obj):
        logger.warning(
            "skipping connector entry point %r (%s): abstract methods left unimplemented: %s",
            ep.name,
            ep.value,
            ", ".join(sorted(obj.__abstractmethods__)),
        )
        return None
    missing = [
        a
        for a in ("key", "name", "category", "config_model", "credentials_model")
        if not hasattr(obj, a)
    ]
    if missing:
        logger.warning(
            "skipping connector entry point %r (%s): missing class attributes %s",
            ep.name,
            ep.value,
            ", ".join(missing),
        )
        return None
    return obj


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
