"""README.md stays true: its API tour runs against a live server, its examples and tables too.

The tour is every ```sh block under "## API tour", run in order by one bash, as a reader pastes
them, with `KRSYNC` and `KEY` set to a server started here (the reader's own `export` lines are
left out). `curl` is wrapped to record each answer; a comment `# → 201` before a command states
the status it must answer, and every answer must be JSON or, where asked, CSV.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.core.settings import Settings
from conftest import ADMIN_KEY
from connectors.base import (
    Connector,
    ConnectorAuthError,
    Filter,
    MappingError,
    MetricQuery,
    Window,
)
from tests.connectors.engine_client import BareClient

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXPECTED = re.compile(r"#\s*→\s*(\d{3})")
CURL = re.compile(r"(?<![\w$-])curl\s")
READER_SETUP = re.compile(r"^export (KRSYNC|KEY)=")
PARTNERS = "3 co-marketing partners signed"

#: Every curl of the tour goes through this: the answer is kept for the test, and a non-2xx
#: one stops the tour (set -e) with the command that got it.
PRELUDE = r"""
set -euo pipefail
curl() {
  local n status
  n=$(( $(cat "$TOUR_LOG/count") + 1 ))
  echo "$n" > "$TOUR_LOG/count"
  command curl -sS -D "$TOUR_LOG/$n.headers" -o "$TOUR_LOG/$n.body" -w '%{http_code}' "$@" \
    > "$TOUR_LOG/$n.status"
  cat "$TOUR_LOG/$n.body"
  status=$(cat "$TOUR_LOG/$n.status")
  case "$status" in
    2??) ;;
    *) echo "call $n answered $status: curl $*" >&2; cat "$TOUR_LOG/$n.body" >&2; return 1 ;;
  esac
}
"""

#: Stands in for jq where it is missing: the tour only reads paths like `.id` or `-r .key`.
JQ_SHIM = """#!{python}
import json, sys
args = sys.argv[1:]
value = json.load(sys.stdin)
for part in [a for a in args if a != "-r"][0].split("."):
    if part:
        value = value[part]
print(value if "-r" in args and isinstance(value, str) else json.dumps(value, indent=2))
"""


def section(title: str) -> str:
    """The README's text under a `## title` heading, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.M | re.S)


@dataclass
class Call:
    status: int
    content_type: str
    body: str


def _tour_script() -> tuple[str, list[int | None]]:
    """The tour as one script, and the documented status of each curl in it, in order."""
    lines: list[str] = []
    expected: list[int | None] = []
    pending: int | None = None
    for block in blocks(section("API tour"), "sh"):
        for line in block.splitlines():
            if READER_SETUP.match(line):
                continue
            lines.append(line)
            stripped = line.strip()
            if stripped.startswith("#"):
                found = EXPECTED.search(stripped)
                pending = int(found.group(1)) if found else pending
            elif CURL.search(stripped):
                expected.append(pending)
                pending = None
    return "\n".join(lines) + "\n", expected


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    """uvicorn serving app.main:app on the test database, as `krsync serve` would."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "KRSYNC_ADMIN_KEY": ADMIN_KEY}
    env.pop("KRSYNC_RUN_SCHEDULER", None)  # no scheduler: the tour starts its own syncs
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_api_tour_runs_against_a_live_server(server: str, tmp_path: Path) -> None:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.skip("the tour runs as a reader would: it needs curl and bash")
    script, expected = _tour_script()
    assert len(expected) >= 15, "the tour lost its commands"
    log = tmp_path / "calls"
    log.mkdir()
    (log / "count").write_text("0")
    env = {**os.environ, "KRSYNC": server, "KEY": ADMIN_KEY, "TOUR_LOG": str(log)}
    if shutil.which("jq") is None:
        shims = tmp_path / "bin"
        shims.mkdir()
        jq = shims / "jq"
        jq.write_text(JQ_SHIM.format(python=sys.executable))
        jq.chmod(0o755)
        env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"

    done = subprocess.run(
        ["bash", "-c", PRELUDE + script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    calls = []
    for n in range(1, int((log / "count").read_text()) + 1):
        headers = (log / f"{n}.headers").read_text()
        kind = re.search(r"^content-type:\s*([^;\r\n]+)", headers, re.I | re.M)
        calls.append(
            Call(
                status=int((log / f"{n}.status").read_text()),
                content_type=kind.group(1).strip() if kind else "",
                body=(log / f"{n}.body").read_text(),
            )
        )
    assert len(calls) == len(expected), "every curl of the tour ran once"
    for n, (call, status) in enumerate(zip(calls, expected, strict=True), start=1):
        assert 200 <= call.status < 300, (n, call)
        if status is not None:
            assert call.status == status, (n, call)
        if call.content_type == "text/csv":
            assert call.body.startswith(
                "date,group,role,value,mapping_id,sync_run_id,provisional\n"
            )
        else:
            assert call.content_type == "application/json", (n, call)
            json.loads(call.body)
    # The tour did what it says: the check-ins show in the progress it reads back, and 2 of 3
    # with a forecast of 9 (the line through day 19 at 1 and day 28 at 2, read on day 91:
    # 2 + 63 / 9) is on track.
    reads = [json.loads(c.body) for c in calls if c.content_type == "application/json"]
    partners = [r for r in reads if isinstance(r, dict) and r.get("title") == PARTNERS]
    progress = partners[-1]["progress"]
    assert (progress["current_value"], progress["status"]) == (2, "on_track")
    assert progress["forecast_value"] == pytest.approx(9.0)
    # The correction kept the value; the filtered list found the team; the trail has both.
    trails = [
        r for r in reads if isinstance(r, dict) and r.get("items") and "entity" in r["items"][0]
    ]
    assert [(e["action"], e["entity"]) for e in trails[-1]["items"]] == [
        ("update", "check_in"),
        ("create", "check_in"),
    ]
    assert trails[-1]["items"][0]["changes"]["confidence"] == [7, 6]
    dashboard = json.loads(calls[-1].body)
    assert [o["title"] for o in dashboard["objectives"]] == [
        "Turn the newsletter into a growth channel"
    ]


def test_the_tour_states_what_each_call_answers() -> None:
    script, expected = _tour_script()
    assert None not in expected, "each curl of the tour says its status in a `# → NNN` comment"
    for name in ("CYCLE", "OBJECTIVE", "SUBSCRIBERS", "SOURCE", "MAPPING", "RUN", "VIEWER"):
        assert f"{name}=$(curl" in script


def test_configuration_table_lists_every_setting() -> None:
    table = section("Configuration")
    listed = set(re.findall(r"^\| `([A-Z_]+)`", table, re.M))
    for name, spec in Settings.model_fields.items():
        aliases = getattr(spec.validation_alias, "choices", None)
        variable = str(aliases[0]) if aliases else f"KRSYNC_{name.upper()}"
        assert variable in listed, f"README's configuration table lacks {variable}"


def test_compose_file_runs_postgres_and_krsync() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    db, app = services["db"], services["krsync"]
    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    for name in ("krsync", "migrate"):
        service = services[name]
        assert service["build"] == "."
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://krsync:")
        assert env["DATABASE_URL"].endswith("@db:5432/krsync")
        assert {"KRSYNC_SECRET_KEY", "KRSYNC_ADMIN_KEY"} <= env.keys()
    assert services["migrate"]["command"] == ["krsync", "migrate"]
    assert app["command"][:2] == ["krsync", "serve"]
    assert "0.0.0.0" in app["command"]
    assert app["ports"] == ["8000:8000"]
    assert app["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert "pgdata" in compose["volumes"]


def _plugin(monkeypatch: pytest.MonkeyPatch) -> type[Connector[Any, Any]]:
    [code] = [
        b for b in blocks(section("Writing a connector plugin"), "python") if "Connector[" in b
    ]
    example = ROOT / "examples" / "krsync-webinars" / "krsync_webinars" / "connector.py"
    assert code.strip() == example.read_text(encoding="utf-8").strip(), (
        "README's plugin listing differs from the example plugin's connector: copy it again"
    )
    # A module of its own, as an installed plugin's is: pydantic resolves the postponed
    # annotations through sys.modules.
    module = types.ModuleType("readme_webinars")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, "README.md", "exec"), module.__dict__)
    cls: type[Connector[Any, Any]] = module.WebinarConnector
    return cls


@pytest.mark.anyio
async def test_the_plugin_example_is_a_working_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing runs as it reads: filters it declares pass, others are refused, its pages
    are followed to the end, a refused key says what to do."""
    cls = _plugin(monkeypatch)
    described = cls.describe()
    assert described["key"] == "webinars"
    assert [m["name"] for m in described["metrics"]] == ["registrants", "attendees"]
    params = cls.validate_query(
        "attendees", {}, [{"field": "webinar_id", "op": "eq", "value": "w1"}], "sum"
    )
    with pytest.raises(MappingError, match="country"):
        cls.validate_query(
            "attendees", {}, [{"field": "country", "op": "eq", "value": "DE"}], "sum"
        )

    def platform(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t0ken"
        if request.url.path == "/v1/account":
            return httpx.Response(200, json={"name": "Acme webinars", "timezone": "Europe/Paris"})
        assert request.url.path == "/v1/reports/daily"
        assert request.url.params["metric"] == "attendees"
        assert request.url.params["webinar_id"] == "w1"
        if request.url.params.get("cursor") == "p2":
            return httpx.Response(
                200, json={"days": [{"date": "2026-07-02", "count": 80}], "next_cursor": None}
            )
        days = [{"date": "2026-07-01", "count": 120}]
        return httpx.Response(200, json={"days": days, "next_cursor": "p2"})

    config = cls.config_model()
    credentials = cls.credentials_model(api_key="t0ken")
    options = cls.http_options(config, credentials)
    async with BareClient(
        base_url=options.base_url, headers=options.headers, transport=httpx.MockTransport(platform)
    ) as http:
        connector = cls(config, credentials, http)
        assert (await connector.check()).timezone == "Europe/Paris"
        query = MetricQuery(
            "1", "attendees", params, (Filter(field="webinar_id", op="eq", value="w1"),)
        )
        result = await connector.fetch([query], Window(date(2026, 7, 1), date(2026, 7, 2)))
    assert [(v.date.day, v.value) for v in result.values] == [(1, 120.0), (2, 80.0)]

    refusing = httpx.MockTransport(lambda _: httpx.Response(401, json={"error": "bad key"}))
    async with BareClient(base_url=options.base_url, transport=refusing) as http:
        with pytest.raises(ConnectorAuthError, match="key"):
            await cls(config, credentials, http).check()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
