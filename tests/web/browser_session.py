"""Signing in as a browser does, for the page tests: the form, the cookie, the CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.web.session import COOKIE

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_token(html: str) -> str:
    """The token the page's forms carry; the test fails here if a page has none."""
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(anon: TestClient, key: str, *, https: bool = False) -> str:
    """Sign in with a key; the answer is the session's CSRF token, read from the dashboard.

    ``https``: the browser reaches krsync over HTTPS, as it must when ``KRSYNC_PUBLIC_URL`` is
    an https address (the cookie is then ``Secure`` and never sent over plain HTTP).
    """
    if https:
        anon.base_url = anon.base_url.copy_with(scheme="https")
    response = anon.post("/login", data={"key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    assert COOKIE in anon.cookies
    return csrf_token(anon.get("/").text)
