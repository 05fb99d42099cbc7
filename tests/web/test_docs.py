"""`/docs` works with no internet: every asset it loads is served by krsync (SPEC 3).

FastAPI's own page loads Swagger UI from cdn.jsdelivr.net: offline, `/docs` was a blank page.
The browser test (`test_browser.py`) renders it with every other host blocked.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources

from fastapi.testclient import TestClient

BUNDLES = resources.files("fastapi_offline") / "static"


class _Refs(HTMLParser):
    """Every URL a page loads (scripts, styles, icons), and any inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self._in_script = True
            if a.get("src"):
                self.urls.append(a["src"] or "")
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"] or "")
        if tag == "img" and a.get("src"):
            self.urls.append(a["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (d.strip().split() for d in csp.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


def test_the_page_and_every_asset_it_loads_come_from_krsync(anon: TestClient) -> None:
    scripts = ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui-init.js"]
    response = anon.get("/docs")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?:|//[a-z]", response.text), response.text  # no other host
    refs = _Refs()
    refs.feed(response.text)
    assert refs.inline_scripts == 0  # the CSP would refuse it: Swagger UI starts from a file
    loaded = [url for url in refs.urls if not url.startswith("data:")]
    assert [url.split("?")[0] for url in loaded if url.split("?")[0].endswith(".js")] == scripts
    for url in loaded:
        assert url.startswith("/"), url
        asset = anon.get(url)
        assert asset.status_code == 200, url
        kind = "text/css" if url.split("?")[0].endswith(".css") else "text/javascript"
        assert asset.headers["content-type"].startswith(kind), url
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert len(asset.content) > 100, url

    csp = _directives(response.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
    assert csp["connect-src"] == ["'self'"]  # the schema and "try it out" go to krsync alone
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_bundle_is_the_packages_own(anon: TestClient) -> None:
    """Swagger UI comes from the `fastapi-offline` package, not from a copy kept here."""
    for url, name in [
        ("/docs/swagger-ui-bundle.js", "swagger-ui-bundle.js"),
        ("/docs/swagger-ui.css", "swagger-ui.css"),
    ]:
        assert anon.get(url).content == (BUNDLES / name).read_bytes(), url


def test_swagger_ui_starts_on_krsyncs_schema_and_calls_nowhere_else(anon: TestClient) -> None:
    init = anon.get("/docs/swagger-ui-init.js").text
    assert "validatorUrl: null" in init  # else it posts the schema to swagger.io for a badge
    assert not re.search(r"https?:", init)
    page = anon.get("/docs").text
    assert 'data-openapi-url="/openapi.json"' in page
    schema = anon.get("/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/cycles" in schema.json()["paths"]


def test_fastapis_cdn_pages_are_gone(anon: TestClient) -> None:
    """ReDoc's bundle would fetch its vendor's logo from cdn.redoc.ly whatever its options."""
    assert "cdn.jsdelivr.net" not in anon.get("/docs").text
    assert anon.get("/redoc").status_code == 404
    assert anon.get("/docs/oauth2-redirect").status_code == 404  # no OAuth flow to return to
