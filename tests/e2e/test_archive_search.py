"""The archive index in the running product: mail sent to `sealmail serve` over SMTP is
found by `sealmail archive search` and by the API of the running portal, and exported."""

from __future__ import annotations

import json
import time
import urllib.request
import zipfile
from pathlib import Path

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message, send
from tests.helpers.smtp_sink import SmtpSink


def _search(product: Product, *args: str) -> dict:
    return json.loads(product.cli("archive", "search", "Acme", *args, "--json").stdout)


def test_sent_mail_is_searchable_and_exportable(
    product: Product, sink: SmtpSink, tmp_path: Path
) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    secure = make_message(
        "[secure] Walrus contract draft",
        "Terms attached.",
        attachments=[("contract.pdf", "application/pdf", b"%PDF-1.4 walrus")],
    )
    plain = make_message("Lunch on Friday", "Noon?", to="carol@recipient.test")
    user, password = tenant["smtp_username"], tenant["smtp_password"]
    send(product.smtp_port, secure, user, password)
    send(product.smtp_port, plain, user, password,
         rcpt=["carol@recipient.test", "hidden@bcc.test"])  # fmt: skip
    sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)  # the notification
    sink.wait_for(lambda m: "carol@recipient.test" in m.rcpt_tos)  # the clear copy

    deadline = time.monotonic() + 30
    while _search(product)["total"] < 2:  # both entries commit before anything is sent
        assert time.monotonic() < deadline, product.logs()[-2000:]
        time.sleep(0.2)
    (hit,) = _search(product, "--subject", "walrus DRAFT")["items"]
    assert hit["decision"] == "portal" and hit["attachments"] == ["contract.pdf"]
    (hit,) = _search(product, "--to", "hidden@bcc.test")["items"]
    assert hit["subject"] == "Lunch on Friday" and hit["bcc"] == ["hidden@bcc.test"]
    assert _search(product, "--has-attachment", "--decision", "clear")["total"] == 0

    # the running portal's API, with the tenant's API key
    req = urllib.request.Request(
        f"{product.portal_url}/api/v1/archive/search?subject=lunch",
        headers={"Authorization": f"Bearer {tenant['api_key']}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        body = json.loads(resp.read())
    assert [i["subject"] for i in body["items"]] == ["Lunch on Friday"]

    out = tmp_path / "acme.zip"
    product.cli("archive", "export", "Acme", "--format", "zip", "--output", str(out))
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["entries"] == 2 and all(f["verified"] for f in manifest["files"])
        assert any(
            b"Subject: [secure] Walrus contract draft" in zf.read(f["file"])
            for f in manifest["files"]
        )
    assert product.stop() == 0
