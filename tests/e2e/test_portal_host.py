"""A tenant's own portal host and "is this notice genuine?", driven through the product
(issue 13, items 5 and 6): ``tenant update --portal-host``, a sealed message by SMTP, the
notice at the sink, the portal over HTTP with the tenant's and another tenant's ``Host``.
Also ``serve``'s warning for a plain-HTTP public address and ``init --public-url``."""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.e2e.conftest import SEALMAIL, Product
from tests.e2e.mail import find_link, make_message, parse, send, text_of
from tests.helpers.smtp_sink import SmtpSink

ACME_HOST = "secure.acme.example"
BETA_HOST = "secure.beta.example"


def _get(product: Product, path: str, host: str) -> tuple[int, str]:
    req = urllib.request.Request(product.portal_url + path, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:  # noqa: S310 - loopback
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _post(product: Product, path: str, host: str, data: dict[str, str]) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode()
    req = urllib.request.Request(
        product.portal_url + path, data=body, headers={"Host": host}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=20) as r:  # noqa: S310 - loopback
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_links_hosts_and_references(product: Product, sink: SmtpSink) -> None:
    product.init()
    acme = product.create_tenant("Acme", "acme.example")
    product.create_tenant("Beta", "beta.example")
    product.cli("tenant", "update", "Acme", "--portal-host", ACME_HOST.upper() + ".")
    product.cli("tenant", "update", "Beta", "--portal-host", BETA_HOST)
    taken = product.cli("tenant", "update", "Beta", "--portal-host", ACME_HOST, check=False)
    assert taken.returncode == 1 and "belongs to another tenant" in taken.stderr
    bad = product.cli("tenant", "update", "Beta", "--portal-host", "https://x/y", check=False)
    assert bad.returncode == 1 and "host name" in bad.stderr
    product.start()

    msg = make_message("[secure] Board minutes", "Dear Bob, the minutes.")
    send(product.smtp_port, msg, acme["smtp_username"], acme["smtp_password"])
    note = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)[0]
    text = text_of(parse(note.data))

    # the link points at the tenant's host (same scheme as portal_base_url)
    link = find_link(note.data, f"http://{ACME_HOST}")
    path = urllib.parse.urlsplit(link).path
    assert product.portal_url not in text
    # ... and works there and on the operator's host, never on another tenant's host
    status, page = _get(product, path, ACME_HOST)
    assert status == 200 and "one-time code" in page
    assert _get(product, path, f"127.0.0.1:{product.portal_port}")[0] == 200
    status, page = _get(product, path, BETA_HOST)
    assert status == 404 and "Board minutes" not in page

    # the notice carries a reference that /verify confirms on the tenant's host
    ref = re.search(r"reference is ([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{3})", text)
    assert ref, text
    assert f"http://{ACME_HOST}/verify" in text
    status, page = _post(product, "/verify", ACME_HOST, {"code": ref.group(1).lower()})
    assert status == 200 and "This notice is genuine" in page
    assert "alice@acme.example" in page and "Acme" in page
    assert "Board minutes" not in page and "bob@recipient.test" not in page
    # ... and on the operator's host, but not on another tenant's
    status, page = _post(
        product, "/verify", f"127.0.0.1:{product.portal_port}", {"code": ref.group(1)}
    )
    assert status == 200 and "This notice is genuine" in page
    status, page = _post(product, "/verify", BETA_HOST, {"code": ref.group(1)})
    assert status == 200 and "We do not know this reference" in page

    # the landing page of a tenant host wears its name and points to /verify
    status, page = _get(product, "/", ACME_HOST)
    assert status == 200 and "Acme" in page and 'href="/verify"' in page and ACME_HOST in page


def test_serve_warns_about_a_plain_http_public_address(product: Product) -> None:
    product.init(portal_base_url="http://portal.example.net")
    product.start()
    product.stop()
    assert "browsers will not keep the portal's secure cookies over plain HTTP" in product.logs()


def test_init_public_url(tmp_path: Path) -> None:
    def init(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SEALMAIL, "init", "--dir", str(tmp_path / "w"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    first = init("--public-url", "https://secure.example.com")
    assert first.returncode == 0, first.stderr
    config = (tmp_path / "w" / "sealmail.toml").read_text()
    assert 'portal_base_url = "https://secure.example.com"' in config
    assert 'smtp_hostname = "secure.example.com"' in config
    again = init("--public-url", "https://secure.example.com")
    assert again.returncode == 0 and "nothing changed" in again.stdout
    moved = init("--public-url", "https://mail.example.com/")
    assert moved.returncode == 0
    config = (tmp_path / "w" / "sealmail.toml").read_text()
    assert config.count("portal_base_url") == 1 and "https://mail.example.com" in config
    for bad in ("http://secure.example.com", "ftp://x", "https://x.example/path"):
        refused = init("--public-url", bad)
        assert refused.returncode == 1, (bad, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1 and "--public-url" in refused.stderr


def test_the_portal_serves_https_itself(product: Product, tmp_path: Path) -> None:
    import ssl

    from sealmail.workdir import write_tls_certificate

    cert, key = tmp_path / "tls" / "portal.crt", tmp_path / "tls" / "portal.key"
    assert write_tls_certificate(cert, key, "localhost")
    product.init(
        portal_tls_cert=str(cert),
        portal_tls_key=str(key),
        portal_base_url="https://localhost:1",
    )
    product.start()
    ctx = ssl.create_default_context(cafile=str(cert))
    url = f"https://localhost:{product.portal_port}/verify"
    with urllib.request.urlopen(url, context=ctx, timeout=20) as r:  # noqa: S310 - loopback
        assert r.status == 200 and "Is this notice genuine?" in r.read().decode()
        assert "max-age" in r.headers["Strict-Transport-Security"]
    product.stop()
    assert "(HTTPS)" in product.logs()
    # a key that is not there: one line at start, exit 1
    product.init(portal_tls_key=str(tmp_path / "missing.key"))
    run = subprocess.run(
        [*SEALMAIL, "--config", str(product.config), "serve"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 1 and "portal_tls_cert/portal_tls_key" in run.stderr


def test_the_proxy_may_ask_which_hosts_are_ours(product: Product) -> None:
    product.init()
    product.create_tenant("Acme", "acme.example")
    product.cli("tenant", "update", "Acme", "--portal-host", ACME_HOST)
    product.start()
    here = f"127.0.0.1:{product.portal_port}"
    ask = "/.well-known/sealmail/host-allowed?domain="
    assert _get(product, ask + ACME_HOST, here)[0] == 200
    assert _get(product, ask + "127.0.0.1", here)[0] == 200
    assert _get(product, ask + "evil.example", here)[0] == 404
    assert _get(product, ask, here)[0] == 404
