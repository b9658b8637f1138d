"""A form posted over plain HTTP, explained.

The portal's cookies are ``__Host-`` and ``Secure``: a browser neither keeps nor sends them
over ``http://``, so every form that needs one (a sign-in, a reply) fails its check there.
Instead of "this form has expired" — which a reload never fixes — the person is told the
site must be reached over HTTPS, and the operator how to set that up. A request is taken to
be plain HTTP when it reached us as ``http`` at a name that is not the machine itself, and
either it came straight from the browser (the peer is no trusted proxy: behind a
TLS-terminating proxy every request is ``http`` here) or ``portal_base_url`` itself says
``http://``. Loopback stays quiet: a browser treats ``http://127.0.0.1`` as secure.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import Request
from starlette.responses import Response

from portal.client import parse_node
from portal.state import portal

TITLE = "This site must be opened over HTTPS"
TEXT = (
    "Your browser reached this portal over plain HTTP, so it could not keep the secure "
    "cookie this form needs, and nothing was submitted. Open the same address starting with "
    "https:// and try again. If you run this portal: serve it over HTTPS (portal_tls_cert "
    "and portal_tls_key, or a reverse proxy with a certificate) and set portal_base_url to "
    "its https:// address."
)


def is_loopback_name(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def over_plain_http(request: Request) -> bool:
    if request.url.scheme != "http" or is_loopback_name(request.url.hostname or ""):
        return False
    st = portal(request)
    if st.settings.portal_base_url.startswith("http://"):
        return True
    client = request.scope.get("client")
    peer = parse_node(client[0]) if client else None
    return peer is None or not st.proxies.trusts(peer)


def plain_http_page(request: Request) -> Response:
    return portal(request).pages.render(
        "error.html", {"status": 403, "title": TITLE, "text": TEXT}, status=403
    )
