"""The API's documentation at `/docs` (Swagger UI), served whole by krsync.

FastAPI's own page loads Swagger UI from a CDN, so on a machine without internet `/docs` is a
blank page. The bundle comes from the `fastapi-offline` package (Swagger UI 5, refreshed by its
maintainer), not from a copy kept here; the page is ours, so that Swagger UI starts from a file
instead of an inline script and the page can be held to a CSP under which nothing loads from
anywhere but krsync.

There is no `/redoc`: ReDoc's bundle always fetches its vendor's logo from cdn.redoc.ly (its
"API docs by Redocly" link has no option to leave it out), and one page of the same schema is
enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader

router = APIRouter(include_in_schema=False)

_HERE = Path(__file__).parent
_BUNDLES = resources.files("fastapi_offline") / "static"
_VERSION = metadata.version("fastapi-offline")

_PAGE_HEADERS = {
    # Swagger UI sets inline styles and draws its icons from data: URLs; every script is a
    # file of ours, and the one place the page may call is krsync's own API.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_ASSET_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class _Asset:
    path: str
    file: Path
    media_type: str


_ASSETS = (
    _Asset("/docs/swagger-ui.css", Path(str(_BUNDLES / "swagger-ui.css")), "text/css"),
    _Asset(
        "/docs/swagger-ui-bundle.js",
        Path(str(_BUNDLES / "swagger-ui-bundle.js")),
        "text/javascript",
    ),
    _Asset("/docs/swagger-ui-init.js", _HERE / "static" / "swagger-ui-init.js", "text/javascript"),
)

_pages = Environment(
    loader=FileSystemLoader(_HERE / "templates" / "docs"), autoescape=True, trim_blocks=True
)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """The API's operations, to read and to try with a key (Swagger UI)."""
    root = request.scope.get("root_path", "")
    html = _pages.get_template("swagger.html").render(
        root=root, openapi_url=f"{root}{request.app.openapi_url}", version=_VERSION
    )
    return HTMLResponse(html, headers=_PAGE_HEADERS)


def _serve(asset: _Asset) -> None:
    def serve() -> Response:
        return FileResponse(asset.file, media_type=asset.media_type, headers=_ASSET_HEADERS)

    router.add_api_route(asset.path, serve, methods=["GET"], name=asset.path)


for _asset in _ASSETS:
    _serve(_asset)
