"""Believe `X-Forwarded-Proto` and `X-Forwarded-For` from KRSYNC_TRUSTED_PROXIES only.

Behind a TLS-terminating proxy the request reaches krsync as plain http; the proxy's headers
say it was https, which decides the cookies' `Secure` flag. From anyone else the same headers
are a client's claim, so they are ignored unless the peer is a listed proxy (none by default).
uvicorn's own middleware does the parsing; `krsync serve` turns uvicorn's copy off so this one,
which reads krsync's setting, is the only one.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.core.settings import get_settings


class TrustedProxies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._by_setting: dict[tuple[str, ...], ProxyHeadersMiddleware] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trusted = get_settings().trusted_proxies if scope["type"] != "lifespan" else ()
        if not trusted:
            await self.app(scope, receive, send)
            return
        # Built per setting (read each request, so a test or a reload may change it).
        middleware = self._by_setting.get(trusted)
        if middleware is None:
            middleware = ProxyHeadersMiddleware(self.app, trusted_hosts=list(trusted))  # type: ignore[arg-type]
            self._by_setting = {trusted: middleware}
        await middleware(scope, receive, send)  # type: ignore[arg-type]
