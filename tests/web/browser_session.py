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


def sign_in(anon: TestClient, key: str) -> str:
    """Sign in with a key; the answer is the session's CSRF token, read from the dashboard."""
    response = anon.post("/login", data={"key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    assert COOKIE in anon.cookies
    return csrf_token(anon.get("/").text)
