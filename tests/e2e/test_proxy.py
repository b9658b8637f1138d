"""The portal behind a reverse proxy, through ``sealmail serve``: the client address for rate
limits and audit rows comes from ``X-Forwarded-For`` / ``Forwarded`` only when the TCP peer
is in ``portal_trusted_proxies``; no redirect is built from ``Host`` or downgraded to http.

The trusted proxy is 127.0.0.1; an untrusted peer is the same machine connecting from
127.0.0.2 (all of 127/8 is loopback). The rate-limited door is the admin sign-in's code
send: 20 per client address per hour (a new address each time, so the per-address limit of
5 never decides)."""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import re
import sqlite3
import urllib.parse
from pathlib import Path

import pytest

from portal.routes import routes
from tests.e2e.conftest import Product, run_cli
from tests.helpers.smtp_sink import SmtpSink

SENDS_PER_IP = 20  # portal.signin.steps.Limits.sends_per_ip
TRUSTED, UNTRUSTED = "127.0.0.1", "127.0.0.2"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Client:
    """One browser behind (or without) the proxy: its own source address and cookie jar,
    and full control of the request headers, ``Host`` included."""

    def __init__(self, port: int, source: str = TRUSTED) -> None:
        self.port = port
        self.source = source
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, str]:
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=30, source_address=(self.source, 0)
        )
        sent = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for cookie in resp.headers.get_all("set-cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return resp.status, resp.headers, text

    def admin_csrf(self, headers: dict[str, str] | None = None) -> str:
        status, _h, page = self.request("GET", "/admin/login", headers)
        assert status == 200, page
        m = _CSRF.search(page)
        assert m
        return m.group(1)

    def send_code(self, csrf: str, address: str, headers: dict[str, str]) -> int:
        form = {"csrf": csrf, "email": address}
        return self.request("POST", "/admin/login", headers, form)[0]


def _xff(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


@pytest.fixture
def behind_proxy(product: Product) -> Product:
    product.init(portal_trusted_proxies=[f"{TRUSTED}/32"])  # type: ignore[arg-type]
    return product


@pytest.mark.timeout(120)
def test_forwarded_clients_are_limited_apart(behind_proxy: Product) -> None:
    behind_proxy.start()
    port = behind_proxy.portal_port
    a, b = "198.51.100.1", "198.51.100.2"

    proxy = Client(port)  # every request through the trusted proxy, for clients A and B
    csrf = proxy.admin_csrf()
    for i in range(SENDS_PER_IP):
        assert proxy.send_code(csrf, f"a{i}@nowhere.example", _xff(a)) == 200, i
    assert proxy.send_code(csrf, "a-more@nowhere.example", _xff(a)) == 429
    # A writes a made-up address on the left; the proxy appends A's real one: still A
    spoofed = _xff(f"203.0.113.7, {a}")
    assert proxy.send_code(csrf, "a-spoof@nowhere.example", spoofed) == 429
    forwarded = {"Forwarded": f'for="{a}:40123";proto=https'}  # RFC 7239, with a port
    assert proxy.send_code(csrf, "a-fwd@nowhere.example", forwarded) == 429
    # B behind the same proxy is a client of its own
    assert proxy.send_code(csrf, "b0@nowhere.example", _xff(b)) == 200
    assert proxy.send_code(csrf, "v6@nowhere.example", {"Forwarded": 'for="[2001:db8::2]"'}) == 200

    # from an untrusted peer the headers are ignored: a new X-Forwarded-For each time does
    # not buy a new allowance, and does not spend A's or B's
    direct = Client(port, source=UNTRUSTED)
    csrf_direct = direct.admin_csrf()
    for i in range(SENDS_PER_IP):
        fake = _xff(f"192.0.2.{i + 1}")
        assert direct.send_code(csrf_direct, f"d{i}@nowhere.example", fake) == 200, i
    assert direct.send_code(csrf_direct, "d-more@nowhere.example", _xff("192.0.2.200")) == 429
    assert direct.send_code(csrf_direct, "d-b@nowhere.example", _xff(b)) == 429
    assert proxy.send_code(csrf, "b1@nowhere.example", _xff(b)) == 200


def _audit_ips(product: Product, action: str) -> list[str]:
    db = sqlite3.connect(product.root / "var" / "sealmail.db")
    try:
        rows = db.execute("SELECT detail FROM audit_log WHERE action = ?", (action,)).fetchall()
    finally:
        db.close()
    return [json.loads(detail).get("ip", "") for (detail,) in rows]


def _route_paths() -> list[tuple[str, str]]:
    """Every (method, path) of the route table, parameters filled with harmless values."""
    out = []
    for route in routes():
        path = getattr(route, "path", "")
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        filled = re.sub(r"\{[^}:]+:int\}", "0", path)
        filled = re.sub(r"\{[^}]+\}", "x", filled)
        for method in methods:
            if method != "HEAD":
                out.append((method, filled))
    return out


@pytest.mark.timeout(120)
def test_no_redirect_follows_host_or_drops_tls(behind_proxy: Product, sink: SmtpSink) -> None:
    tenant = behind_proxy.create_tenant("Acme", "acme.example")
    behind_proxy.cli("user", "add", tenant["id"], "admin@acme.example", "--role", "admin")
    behind_proxy.start()
    port = behind_proxy.portal_port
    evil = {
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "198.51.100.9",
    }

    # every route, with and without a trailing slash, asked for under a foreign Host
    client = Client(port)
    redirects = 0
    for method, path in _route_paths():
        for p in {path, path.rstrip("/") + "/"}:
            form = {} if method in ("POST", "PUT") else None
            status, headers, body = client.request(method, p, evil, form)
            location = headers.get("location", "")
            where = f"{method} {p} -> {status} {location}"
            assert "evil.example" not in location and "evil.example" not in body, where
            if location:
                redirects += 1
                assert location.startswith("/") and not location.startswith("//"), where
            csp = headers.get("content-security-policy", "")
            assert "frame-ancestors" in csp and headers.get("x-frame-options"), where
    assert redirects >= 5  # /admin, /sent, /support, slash twins...

    # a whole sign-in under that Host: the code page, the code, the landing redirect
    csrf = client.admin_csrf(evil)
    form = {"csrf": csrf, "email": "admin@acme.example"}
    status, _h, code_page = client.request("POST", "/admin/login", evil, form)
    assert status == 200, code_page
    m = _CSRF.search(code_page)
    assert m
    got = sink.wait_for(lambda m: "admin@acme.example" in m.rcpt_tos, timeout=60)
    mail = email.message_from_bytes(got[0].data, policy=email.policy.default)
    body = mail.get_body(("plain",))
    assert body is not None
    code = re.search(r"\b(\d{6})\b", body.get_content())
    assert code
    form = {"csrf": m.group(1), "code": code.group(1)}
    status, headers, _b = client.request("POST", "/admin/verify", evil, form)
    assert status == 303 and headers["location"] == "/admin", headers.get("location")
    # the audit rows name the forwarded client, not the proxy
    assert _audit_ips(behind_proxy, "admin.code.sent") == ["198.51.100.9"]
    assert _audit_ips(behind_proxy, "admin.signin") == ["198.51.100.9"]


@pytest.mark.timeout(60)
def test_a_bad_trusted_proxy_is_a_one_line_config_error(tmp_path: Path) -> None:
    config = tmp_path / "sealmail.toml"
    config.write_text('portal_trusted_proxies = ["10.0.0.0/8", "proxy.example"]\n')
    proc = run_cli("tenant", "list", config=config, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "portal_trusted_proxies" in proc.stderr and "proxy.example" in proc.stderr
