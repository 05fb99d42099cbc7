"""What every real-browser test shares: Debian's chromium, a live krsync, a watched page.

Debian's `chromium` is driven by Playwright for Python through `executable_path`; no browser is
downloaded. `make test` (and so `.ci/run`) installs the package when it is missing; the
``chromium_path`` fixture tries the same when it can, and skips only when the browser is absent
and cannot be installed. A test module takes the fixtures by importing them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN_KEY

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE_WIDTH = 375


def _chromium() -> str | None:
    """Debian's chromium, installed with apt-get when missing and we may (root, apt present)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "chromium"],
            check=True,
            capture_output=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    if path is None:
        pytest.skip("Debian's `chromium` is not installed and could not be (run `make browser`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -e '.[dev]')")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(
    db_url: str, tmp_path: Path, env: Mapping[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """`uvicorn app.main:app` on a free port (or ``port``), on this test's database."""
    port = port or free_port()
    full_env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "KRSYNC_ADMIN_KEY": ADMIN_KEY,
        "KRSYNC_SCHEDULER_ENABLED": "false",
        **(env or {}),
    }
    log_path = tmp_path / f"uvicorn-{port}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "app.main:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"the server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[str]:
    with serving(db_url, tmp_path) as base:
        yield base


def watched_page(browser: Any, problems: list[str], width: int, height: int) -> Any:
    """A page in a fresh context whose console errors (a style or script the CSP refused) are
    kept in ``problems``."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    return page


@contextmanager
def signed_in_page(
    chromium_path: str, problems: list[str], url: str, key: str, width: int = 1400
) -> Iterator[Any]:
    """A :func:`watched_page` in Debian's chromium, signed in at ``url`` with ``key``; the
    browser closes after, whatever the test did. Screenshots go to :data:`ARTIFACTS`."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = watched_page(browser, problems, width, 900)
            sign_in_page(page, url, key)
            yield page
        finally:
            browser.close()


def sign_in_page(page: Any, url: str, key: str) -> None:
    """Open ``url`` and sign in on its key form, as a person does."""
    page.goto(url)
    page.fill("#key", key)
    page.click("button[type=submit]")


_OVERFLOWING = """(width) => [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > width + 1)
    .slice(-5)
    .map((e) => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className
        + " right=" + Math.round(e.getBoundingClientRect().right))"""


def no_sideways_scroll(page: Any, width: int) -> None:
    """Nothing wider than the screen; the message names the innermost elements that are."""
    if page.evaluate("document.scrollingElement.scrollWidth") > width + 1:
        raise AssertionError(f"scrolls sideways: {page.evaluate(_OVERFLOWING, width)}")


def at_phone_width(page: Any, name: str) -> None:
    """The page at phone width: nothing scrolls sideways, and a screenshot to look at."""
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    page.wait_for_timeout(100)
    no_sideways_scroll(page, PHONE_WIDTH)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def wait_for_backfills(api: httpx.Client, auth: dict[str, str]) -> None:
    """Mappings backfill in the background of the request that made them; wait them out."""
    deadline = time.monotonic() + 60
    running = {"status": "running"}
    while api.get("/api/v1/sync-runs", params=running, headers=auth).json()["total"]:
        assert time.monotonic() < deadline, "backfills still running after 60 s"
        time.sleep(0.2)


#: Console errors a page may show on purpose: a refused form answers 4xx.
EXPECTED_CONSOLE = "Failed to load resource: the server responded with a status of 4"


def unexpected(problems: list[str]) -> list[str]:
    return [p for p in problems if not p.startswith(EXPECTED_CONSOLE)]
