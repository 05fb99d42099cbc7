"""How much code a built-in connector takes once the shared toolkit does its part.

    .venv/bin/python bench/connector_size.py

A connector is what an entry point of ``krsync.connectors`` in pyproject.toml names: its package
when it has one of its own below ``connectors/`` (every ``.py`` file in it, tests elsewhere),
else its module. Lines are physical lines, docstrings and comments included, as ``wc -l``
counts them: what a plugin author reads. The toolkit (the modules directly in ``connectors/``
that no entry point names, such as ``base.py`` or ``paginate.py``) is left out, since every
connector shares it.

Prints one line a connector, largest first, then the headline figures.
"""

from __future__ import annotations

import statistics
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def connector_sizes(root: Path = ROOT) -> dict[str, tuple[str, int]]:
    """Each connector's name → (what was counted, its lines)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    points: dict[str, str] = project["project"]["entry-points"]["krsync.connectors"]
    sizes: dict[str, tuple[str, int]] = {}
    for name, target in points.items():
        module = target.split(":")[0]
        parts = module.split(".")
        package = root.joinpath(*parts[:2])
        if package.is_dir():
            files = sorted(package.rglob("*.py"))
            counted = f"{package.relative_to(root)}/"
        else:
            files = [root.joinpath(*parts).with_suffix(".py")]
            counted = str(files[0].relative_to(root))
        sizes[name] = (counted, sum(_lines(f) for f in files))
    return sizes


def main() -> None:
    sizes = connector_sizes()
    if not sizes:
        sys.exit("no connector is registered in pyproject.toml")
    for name, (counted, lines) in sorted(sizes.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:16} {lines:5} lines  {counted}")
    figures = [lines for _, lines in sizes.values()]
    print(f"connectors: {len(figures)}")
    print(f"connector median: {statistics.median(figures):.0f} lines")
    print(f"connector max: {max(figures)} lines")


if __name__ == "__main__":
    main()
