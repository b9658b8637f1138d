"""Issue 16's access side through ``sealmail serve`` as a black box: the policy imported with
the CLI sends one domain encrypted PDFs (method ``pdf``); a message written through the API
with a sender-set passphrase reaches the next hop as a branded notice carrying an AES-256
PDF that opens with that passphrase only and holds the body and the attachment byte for
byte; no mail at the sink carries the passphrase. The portal copy of the same message asks
the recipient, signed in with the emailed code, for the passphrase before it opens."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import urllib.request
from email import message_from_bytes
from email.policy import default as default_policy

import pypdf
import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link
from tests.e2e.test_corpus import _sign_in
from tests.helpers.smtp_sink import SmtpSink

pytestmark = pytest.mark.timeout(240)
RECIPIENT = "bob@recipient.test"  # the one _sign_in reads codes for
PASSPHRASE = "Lantern-Quay-4417"
POLICY = """rules:
  - name: pdf-for-recipients
    when: {recipient_domain: recipient.test}
    action: encrypt
    method: pdf
"""


def _compose(product: Product, api_key: str, payload: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{product.portal_url}/api/v1/messages",
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=20) as r:  # noqa: S310 - loopback
        assert r.status == 202
        return json.loads(r.read())


def test_a_passphrase_protected_pdf_through_serve(
    product: Product, sink: SmtpSink, tmp_path
) -> None:  # noqa: ANN001
    tenant = product.create_tenant("Acme", "acme.example")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    product.cli("policy", "import", "Acme", str(policy))
    product.start()
    attachment = os.urandom(40_000)
    sent = _compose(
        product,
        tenant["api_key"],
        {
            "from": "alice@acme.example",
            "to": RECIPIENT,
            "subject": "Your statement",
            "text": "Dear Bob,\nyour statement is attached.\n",
            "passphrase": PASSPHRASE,
            "passphrase_hint": "the harbour",
            "attachments": [
                {
                    "name": "statement.bin",
                    "content_type": "application/octet-stream",
                    "content_base64": base64.b64encode(attachment).decode(),
                }
            ],
        },
    )
    (notice,) = sink.wait_for(lambda m: RECIPIENT in m.rcpt_tos)
    for mail in sink.messages:
        assert PASSPHRASE.encode() not in mail.data
        assert b"X-Sealmail-Passphrase-Ref" not in mail.data
    parsed = message_from_bytes(notice.data, policy=default_policy)
    (pdf_part,) = [
        a for a in parsed.iter_attachments() if a.get_content_type() == "application/pdf"
    ]
    data = pdf_part.get_content()
    assert not pypdf.PdfReader(io.BytesIO(data)).decrypt("")
    assert not pypdf.PdfReader(io.BytesIO(data)).decrypt("Lantern-Quay")
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert reader.decrypt(PASSPHRASE)
    assert "your statement is attached." in reader.pages[0].extract_text()
    (got,) = reader.attachments["statement.bin"]
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(attachment).hexdigest()

    # the portal copy needs the passphrase on top of the code
    visitor = _sign_in(product, sink, find_link(notice.data, product.portal_url))
    status, _, page = visitor.request(f"/messages/{sent['id']}")
    assert status == 403 and b"protected this message with a passphrase" in page
    assert b"the harbour" in page and b"your statement is attached" not in page
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]+)"', page.decode()).group(1))
    status, _, page = visitor.request(
        f"/messages/{sent['id']}/unlock", {"csrf": csrf, "passphrase": "wrong-passphrase"}
    )
    assert status == 400
    status, _, _ = visitor.request(
        f"/messages/{sent['id']}/unlock", {"csrf": csrf, "passphrase": PASSPHRASE}
    )
    assert status == 303
    status, _, page = visitor.request(f"/messages/{sent['id']}")
    assert status == 200 and b"your statement is attached" in page
