"""The stylesheet parses as written: an unclosed block (a merge can leave one) silently swallows
every rule after it, which no page test notices until a person looks."""

from __future__ import annotations

import re

from app.web.pages import CSS


def test_every_block_of_the_stylesheet_is_closed() -> None:
    text = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"line {number} closes a block that was never opened"
        if depth == 1 and line.startswith("@media"):
            opened = number
        if depth > 1 and line.startswith("@media"):
            raise AssertionError(f"line {number}: @media inside the block opened at {opened}")
    assert depth == 0, "a block is left open at the end of the stylesheet"
