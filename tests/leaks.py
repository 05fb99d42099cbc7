"""Finding what is left of a secret in a text: any 8-character piece of it counts as a leak.

Masking a whole value is not enough of a test: a message that quotes all but the last few
characters of a token leaks the token. Tests look for every 8-character piece of each spelling
(raw, JSON-escaped...) of the secret, and for a mask the cut split (``*`` or ``**``).
"""

from __future__ import annotations

import re

PIECE = 8


def leaked(text: str, *spellings: str) -> list[str]:
    """The 8-character pieces of ``spellings`` found in ``text``, in order (none: no leak)."""
    found: list[str] = []
    for spelling in spellings:
        for start in range(max(1, len(spelling) - PIECE + 1)):
            piece = spelling[start : start + PIECE]
            if piece in text and piece not in found:
                found.append(piece)
    return found


def split_masks(text: str) -> list[str]:
    """Runs of ``*`` that are not a whole ``***`` mask: a mask the cut went through."""
    return [run for run in re.findall(r"\*+", text) if len(run) % 3]
