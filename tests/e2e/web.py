"""One visitor of the running portal over plain HTTP, with its cookies: the ``__Host-``
cookies are ``Secure``, which an HTTP client would not send back to an http:// URL by
itself."""

from __future__ import annotations

import re
from typing import Any

import httpx2

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


class Visitor:
    def __init__(self, base: str) -> None:
        self.http = httpx2.Client(base_url=base, timeout=60, follow_redirects=False)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        r = self.http.request(method, path, headers=headers, **kwargs)
        for line in r.headers.get_list("set-cookie"):
            name, _, rest = line.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return r

    def csrf(self, path: str) -> tuple[str, str]:
        """The CSRF token of the form at ``path`` and the page."""
        page = self.request("GET", path)
        assert page.status_code == 200, (path, page.status_code, page.text[:500])
        return csrf_of(page.text), page.text
