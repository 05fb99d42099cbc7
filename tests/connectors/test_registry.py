"""Discovery through the ``krsync.connectors`` entry points, the way a third-party plugin registers.

The plugin tests build a real installed distribution (a ``*.dist-info`` directory with
``entry_points.txt``) on ``sys.path``, so they go through ``importlib.metadata`` exactly as a
``pip install``-ed plugin would: https://packaging.python.org/en/latest/specifications/entry-points/
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

from connectors import registry
from connectors.demo import DemoConnector
from connectors.registry import (
    ENTRY_POINT_GROUP,
    UnknownConnectorError,
    clear_cache,
    describe_connectors,
    get_connector,
    load_connectors,
)

PLUGIN = "krsync_plugin_example"

PLUGIN_SOURCE = """
from pydantic import BaseModel

from connectors.base import CheckResult, Connector, FetchResult, MetricSpec


class ExampleConfig(BaseModel):
    account: str = "acme"


class ExampleCredentials(BaseModel):
    token: str = ""


class ExampleConnector(Connector[ExampleConfig, ExampleCredentials]):
    key = "example"
    name = "Example plugin"
    category = "generic"
    config_model = ExampleConfig
    credentials_model = ExampleCredentials
    metrics = (MetricSpec(name="widgets", description="Widgets sold", unit="widgets"),)

    async def check(self):
        return CheckResult("fine")

    async def fetch(self, queries, window):
        return FetchResult()


class HalfConnector(Connector[ExampleConfig, ExampleCredentials]):
    key = "half"
    name = "Forgot fetch"
    category = "generic"
    config_model = ExampleConfig
    credentials_model = ExampleCredentials

    async def check(self):
        return CheckResult("fine")


class Impostor(ExampleConnector):
    key = "example"
    name = "Another connector claiming the same key"


NOT_A_CONNECTOR = object()
"""


def install_plugin(root: Path, entries: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Lay out an installed distribution under ``root`` and put it on ``sys.path``."""
    (root / PLUGIN).mkdir()
    (root / PLUGIN / "__init__.py").write_text(PLUGIN_SOURCE)
    (root / "krsync_plugin_raises.py").write_text("raise RuntimeError('plugin bug at import')\n")
    dist_info = root / f"{PLUGIN}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: krsync-plugin-example\nVersion: 1.0\n"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(root))


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Each test discovers from scratch and leaves no plugin behind for the next one."""
    clear_cache()
    yield
    clear_cache()
    for module in (PLUGIN, "krsync_plugin_raises"):
        sys.modules.pop(module, None)


def test_a_plugin_package_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_connectors()  # a cached scan from before the install must not hide the plugin
    install_plugin(tmp_path, {"example": f"{PLUGIN}:ExampleConnector"}, monkeypatch)

    found = load_connectors(refresh=True)

    assert "example" in found
    cls = get_connector("example")
    assert cls.__module__ == PLUGIN
    assert cls.name == "Example plugin"
    assert [m["name"] for m in cls.describe()["metrics"]] == ["widgets"]
    assert any(d["key"] == "example" for d in describe_connectors())


def test_broken_entry_points_are_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    install_plugin(
        tmp_path,
        {
            "example": f"{PLUGIN}:ExampleConnector",
            "missing_module": "krsync_plugin_nowhere:Connector",
            "missing_attr": f"{PLUGIN}:NoSuchClass",
            "raises": "krsync_plugin_raises:Anything",
            "not_a_class": f"{PLUGIN}:NOT_A_CONNECTOR",
            "half": f"{PLUGIN}:HalfConnector",
        },
        monkeypatch,
    )
    with caplog.at_level(logging.WARNING, logger="connectors.registry"):
        found = load_connectors(refresh=True)

    assert "example" in found
    assert "half" not in found
    warned = caplog.text
    for name in ("missing_module", "missing_attr", "raises", "not_a_class", "half"):
        assert f"skipping connector entry point '{name}'" in warned
    assert "plugin bug at import" in warned
    assert "not a Connector subclass" in warned
    assert "fetch" in warned  # the abstract method the half-done plugin forgot


def test_the_class_key_wins_over_the_entry_point_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    install_plugin(tmp_path, {"sample": f"{PLUGIN}:ExampleConnector"}, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="connectors.registry"):
        found = load_connectors(refresh=True)
    assert "sample" not in found
    assert found["example"].name == "Example plugin"
    assert "'sample' names class key 'example'" in caplog.text


def test_a_duplicate_key_keeps_the_first_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    install_plugin(
        tmp_path,
        {"example": f"{PLUGIN}:ExampleConnector", "example_too": f"{PLUGIN}:Impostor"},
        monkeypatch,
    )
    with caplog.at_level(logging.WARNING, logger="connectors.registry"):
        found = load_connectors(refresh=True)
    assert found["example"].__name__ == "ExampleConnector"
    assert "claimed by" in caplog.text


def test_demo_resolves_through_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """The value the lead declares in pyproject.toml, resolved the way the registry does it."""
    demo = EntryPoint(name="demo", value="connectors.demo:DemoConnector", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [demo])
    assert load_connectors(refresh=True) == {"demo": DemoConnector}


def test_installed_package_registers_demo() -> None:
    if not any(ep.name == "demo" for ep in entry_points(group=ENTRY_POINT_GROUP)):
        pytest.skip("krsync is installed without its demo entry point: re-run `pip install -e .`")
    assert get_connector("demo") is DemoConnector


def test_discovery_is_cached_until_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    demo = EntryPoint(name="demo", value="connectors.demo:DemoConnector", group=ENTRY_POINT_GROUP)

    def fake_entry_points(group: str) -> list[EntryPoint]:
        calls.append(group)
        return [demo]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    first = load_connectors()
    first.clear()  # callers get a copy; mutating it can't corrupt the registry
    assert get_connector("demo") is DemoConnector
    assert calls == [ENTRY_POINT_GROUP]
    load_connectors(refresh=True)
    assert len(calls) == 2


def test_unknown_key_lists_the_installed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    demo = EntryPoint(name="demo", value="connectors.demo:DemoConnector", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [demo])
    with pytest.raises(KeyError) as info:
        get_connector("ga5")
    assert isinstance(info.value, UnknownConnectorError)
    assert str(info.value) == "no connector `ga5` is installed; installed: `demo`"


def test_no_connectors_at_all_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    assert load_connectors(refresh=True) == {}
    with pytest.raises(KeyError, match="installed: none"):
        get_connector("demo")


def test_a_lookup_by_key_imports_that_connector_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nightly sync of one platform's sources doesn't pay for every other plugin's imports;
    asking for the whole catalogue still finds them all."""
    install_plugin(
        tmp_path,
        {"example": f"{PLUGIN}:ExampleConnector", "raises": "krsync_plugin_raises:Nothing"},
        monkeypatch,
    )
    sys.modules.pop(PLUGIN, None)

    assert get_connector("demo") is DemoConnector

    assert PLUGIN not in sys.modules
    assert "krsync_plugin_raises" not in sys.modules
    assert get_connector("example").__module__ == PLUGIN
    assert "krsync_plugin_raises" not in sys.modules
    assert {"demo", "example"} <= set(load_connectors())
