"""Attempt limits hold under concurrency, against a running ``sealmail serve``.

40 parallel wrong guesses at one admin, one sender and one ``/pin`` code (real HTTP on
loopback, one browser's cookies, on SQLite and on PostgreSQL): the failure audit rows say
how many guesses were compared with the code, at most 5; afterwards the right code is
refused and no session was opened.

SMTP AUTH tries are limited per client address and per username across sessions (10 in 15
minutes each): over either limit the right password gets ``454 4.7.0``; loopback addresses
127.0.0.x stand for different clients.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from core.config.loading import load_settings
from core.models import AuditEvent, PortalSession
from core.services import Services
from tests.e2e.conftest import Product
from tests.e2e.mail import find_code
from tests.e2e.test_billing import SECRET, _webhook
from tests.helpers.smtp_sink import SmtpSink

GUESSES = 40
MAX_TRIES = 5
HTTP_TIMEOUT = 30
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """One browser: its cookies (``Secure`` ones too: the test server is plain HTTP)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies: dict[str, str] = {}
        self._opener = urllib.request.build_opener(_NoRedirect)

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        headers = {"Origin": self.base_url} if form is not None else {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            resp = self._opener.open(req, timeout=HTTP_TIMEOUT)
        except urllib.error.HTTPError as err:
            resp = err
        with resp:
            body = resp.read().decode(errors="replace")
            for line in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = line.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return resp.status, body

    def post_quietly(self, path: str, form: dict[str, str]) -> int:
        """A POST that keeps no cookie it is given (for parallel requests)."""
        headers = {
            "Origin": self.base_url,
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
        }
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            with self._opener.open(req, timeout=HTTP_TIMEOUT) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _csrf(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF field on the page"
    return html.unescape(found.group(1))


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def _rows(product: Product, action: str, kind: str) -> tuple[list[dict[str, object]], int]:
    """The ``action`` audit rows' details and the tries counted on the pending row."""
    svc = Services.open(load_settings(product.config))
    try:
        async with svc.db.session() as s:
            stmt = select(AuditEvent.detail).where(AuditEvent.action == action)
            details = [json.loads(d) for d in (await s.execute(stmt)).scalars()]
            stmt2 = select(PortalSession.tries).where(PortalSession.kind == kind)
            tries = list((await s.execute(stmt2)).scalars())
    finally:
        await svc.close()
    assert len(tries) == 1, tries
    return details, tries[0]


def _guess_in_parallel(
    product: Product,
    sink: SmtpSink,
    *,
    door: str,
    start: str,
    send: str,
    verify: str,
    email: str,
    pending_kind: str,
) -> None:
    browser = Browser(product.portal_url)
    status, page = browser.request(start)
    assert status == 200, page[:2000]
    seen = {id(m) for m in sink.messages}
    status, page = browser.request(send, {"csrf": _csrf(page), "email": email})
    assert status == 200, page[:2000]
    csrf = _csrf(page)
    mail = sink.wait_for(lambda m: email in m.rcpt_tos and id(m) not in seen)[-1]
    code = find_code(mail.data)

    wrong = {"csrf": csrf, "code": _wrong(code)}
    with ThreadPoolExecutor(GUESSES) as pool:
        statuses = list(pool.map(lambda _: browser.post_quietly(verify, wrong), range(GUESSES)))
    # 400: the code page again (wrong, or used up); 429: the door's failure limit
    assert set(statuses) <= {400, 429}, statuses

    failed, tries = asyncio.run(_rows(product, f"{door}.code.failed", pending_kind))
    compared = sum(1 for d in failed if d["checked"])
    assert 1 <= compared <= MAX_TRIES, (compared, statuses)
    assert tries == compared
    # the door's own limits also stopped guesses before they reached the code
    assert len(failed) <= GUESSES

    status, page = browser.request(verify, {"csrf": csrf, "code": code})
    assert status != 303, "the right code opened a session after the limit"
    assert status in (400, 429), (status, page[:2000])
    signed_in, _ = asyncio.run(_rows(product, f"{door}.signin", pending_kind))
    assert signed_in == []


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_parallel_wrong_guesses_get_at_most_five_compares(
    tmp_path: Path, sink: SmtpSink, db_url: str
) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(database_url=db_url, billing_webhook_secret=SECRET)
    product.create_tenant("Acme", "acme.example")
    product.cli("user", "add", "Acme", "boss@acme.example", "--role", "admin")
    product.cli("user", "add", "Acme", "sender@acme.example", "--role", "sender")
    product.start()
    _webhook(
        product,
        "evt_limits",
        "account.created",
        account="acct_acme",
        kind="tenant",
        tenant="Acme",
        name="Acme Inc",
        contacts=[{"email": "ann@acme.example", "role": "owner"}],
    )
    doors = [
        ("admin", "/admin/login", "/admin/login", "/admin/verify", "boss@acme.example"),
        ("sent", "/sent/login", "/sent/login", "/sent/verify", "sender@acme.example"),
        ("pin", "/pin", "/pin/code", "/pin/verify", "ann@acme.example"),
    ]
    kinds = {"admin": "admin-code", "sent": "sent-code", "pin": "pin-code"}
    for door, start, send, verify, email in doors:
        _guess_in_parallel(
            product,
            sink,
            door=door,
            start=start,
            send=send,
            verify=verify,
            email=email,
            pending_kind=kinds[door],
        )


# --- SMTP AUTH ------------------------------------------------------------------------------

AUTH_LIMIT = 10


def _auth(product: Product, source: str, username: str, password: str) -> int:
    """One session from ``source``: STARTTLS, one AUTH; the reply code."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(
        "127.0.0.1", product.smtp_port, timeout=HTTP_TIMEOUT, source_address=(source, 0)
    ) as smtp:
        smtp.starttls(context=ctx)
        smtp.ehlo()
        smtp.user, smtp.password = username, password
        try:
            smtp.auth("PLAIN", smtp.auth_plain)  # one try (login() tries every mechanism)
        except smtplib.SMTPResponseException as err:
            return err.smtp_code
        return 235


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_smtp_auth_is_limited_per_address_and_per_username_across_sessions(
    tmp_path: Path, sink: SmtpSink, db_url: str
) -> None:
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(database_url=db_url)
    acme = product.create_tenant("Acme", "acme.example")
    beta = product.create_tenant("Beta", "beta.example")
    product.start()
    a_user, a_pass = acme["smtp_username"], acme["smtp_password"]
    b_user, b_pass = beta["smtp_username"], beta["smtp_password"]

    # one address, many sessions in parallel, wrong passwords and unknown usernames alike:
    # exactly AUTH_LIMIT are checked (535, the same for both), the rest get 454
    guesses = [(a_user, "wrong") if i % 6 == 0 else (f"nobody{i}", "wrong") for i in range(24)]
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda g: _auth(product, "127.0.0.2", *g), guesses))
    assert sorted(codes) == [454] * (24 - AUTH_LIMIT) + [535] * AUTH_LIMIT, codes
    assert _auth(product, "127.0.0.2", a_user, a_pass) == 454  # the right password too
    # another address is not held back by it, and its success frees nothing for 127.0.0.2
    assert _auth(product, "127.0.0.1", a_user, a_pass) == 235
    assert _auth(product, "127.0.0.2", b_user, b_pass) == 454

    # one username from several addresses, each under its own limit
    for n in range(AUTH_LIMIT):
        assert _auth(product, f"127.0.0.{10 + n % 5}", b_user, "wrong") == 535
    assert _auth(product, "127.0.0.20", b_user, b_pass) == 454
    assert _auth(product, "127.0.0.20", a_user, a_pass) == 235  # that address may still
