"""Helpers of the web tests: reading a form's CSRF token, signing in."""

from __future__ import annotations

import re

import httpx

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in the first form of a page."""
    match = CSRF_RE.search(html)
    assert match is not None, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: httpx.Client, token: str, next: str = "/") -> httpx.Response:
    """Sign in as a browser would: open the form (its token and nonce cookie), then post it."""
    form = client.get("/login")
    data = {"token": token, "next": next, "csrf": csrf_of(form.text)}
    return client.post("/login", data=data, follow_redirects=False)
