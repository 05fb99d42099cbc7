"""The one directory connectors may read local files from: ``KRSYNC_FILES_DIR``.

A source's config is written by an editor over the API, so a local path in it must not reach the
rest of the machine (krsync's own database, its keys, ``/etc``). The ``csv`` connector reads CSV
files and the ``sql`` connector opens SQLite databases through the same check, which also refuses
krsync's own database should it lie in that directory (an admin who points both at one place):
a CSV read of it would quote its rows in warnings, a SQLite source would query it.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from connectors.base import ConnectorConfigError

FILES_DIR_ENV = "KRSYNC_FILES_DIR"


def file_in_files_dir(given: str, *, otherwise: str = "") -> Path:
    """The real path of ``given`` (relative to the directory, or absolute inside it).

    Symlinks are resolved before the check, so a link out of the directory doesn't count, nor
    one to krsync's own database.
    ``otherwise`` ends the message for an unset directory with what the user may do instead.
    """
    root_setting = os.environ.get(FILES_DIR_ENV, "").strip()
    if not root_setting:
        raise ConnectorConfigError(
            f"local files are read only from {FILES_DIR_ENV}, which is unset here, so local "
            f"paths are refused: ask the admin to set it{otherwise}"
        )
    root = Path(root_setting).expanduser().resolve()
    candidate = Path(given).expanduser()
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise ConnectorConfigError(
            f"local files are read only from {FILES_DIR_ENV} ({root}); `{given}` is outside "
            "it (links out of it don't count): move the file there"
        )
    if not resolved.is_file():
        raise ConnectorConfigError(f"no file `{given}` in {FILES_DIR_ENV} ({root})")
    not_own_database(resolved, given)
    return resolved


def own_database() -> Path | None:
    """The SQLite file krsync itself runs on, resolved as krsync opens it (from its cwd), where
    ``app/core/settings.py`` reads it; None when krsync runs on another database."""
    configured = os.environ.get("DATABASE_URL") or os.environ.get("KRSYNC_DATABASE_URL") or ""
    try:
        url = make_url(configured.strip() or "sqlite:///krsync.db")
    except (ArgumentError, ValueError):
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database.removeprefix("file:").split("?", 1)[0]).expanduser().resolve()


def not_own_database(path: Path, given: str) -> None:
    """Refuses ``path`` (the file :func:`file_in_files_dir` found for ``given``) when it is
    krsync's own database, whatever name or link leads to it."""
    own = own_database()
    if own is not None and (path == own or (own.exists() and os.path.samefile(path, own))):
        raise ConnectorConfigError(
            f"`{given}` is krsync's own database: point the source at your data instead"
        )
