"""The evidence log and receipts (issue 16) through ``sealmail serve`` as a black box: a
message relayed in clear (the next hop's 250 in its receipt) and a sealed one opened and
downloaded in the portal; their receipts verify offline with only the public key the portal
publishes; the receipt's digest is the SHA-256 of the message ``sealmail archive export``
gives; a changed byte of a receipt, and a changed, removed or reordered row of the log, are
named by the verifiers, which exit 1."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import urllib.request
import zipfile
from pathlib import Path

import pypdf
import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, make_message, send
from tests.e2e.test_corpus import _sign_in
from tests.helpers.smtp_sink import SmtpSink

pytestmark = pytest.mark.timeout(240)
RECIPIENT = "bob@recipient.test"  # the one _sign_in reads codes for


def _qid(reply: str) -> str:
    found = re.search(r"queued as (\S+)", reply)
    assert found, reply
    return found.group(1)


def _receipt(product: Product, qid: str, path: Path) -> dict:
    product.cli("receipt", qid, "--output", str(path))
    return json.loads(path.read_text())


def _verify(product: Product, receipt: Path, keys: Path):  # noqa: ANN202
    return product.cli("receipt", "verify", str(receipt), "--public-key", str(keys), check=False)


def _kinds(receipt: dict, rcpt: str) -> list[str]:
    (r,) = [r for r in receipt["receipt"]["recipients"] if r["address"] == rcpt]
    return [e["kind"] for e in r["events"]]


def test_receipts_verify_offline_and_tampering_is_named(
    product: Product, sink: SmtpSink, tmp_path: Path
) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    login = (tenant["smtp_username"], tenant["smtp_password"])
    clear_qid = _qid(
        send(product.smtp_port, make_message("Lunch", "at noon", to="carol@recipient.test"), *login)
    )
    sealed_qid = _qid(
        send(product.smtp_port, make_message("[secure] Contract", "sign it", to=RECIPIENT), *login)
    )
    sink.wait_for(lambda m: "carol@recipient.test" in m.rcpt_tos)
    (note,) = sink.wait_for(lambda m: RECIPIENT in m.rcpt_tos)
    visitor = _sign_in(product, sink, find_link(note.data, product.portal_url))
    status, _, _ = visitor.request(f"/messages/{sealed_qid}")
    assert status == 200
    status, _, eml = visitor.request(f"/messages/{sealed_qid}/download.eml")
    assert status == 200 and b"sign it" in eml

    with urllib.request.urlopen(  # noqa: S310 - loopback
        f"{product.portal_url}/.well-known/sealmail/receipt-keys", timeout=10
    ) as r:
        published = r.read()
    sealed = _receipt(product, sealed_qid, tmp_path / "sealed.json")
    clear = _receipt(product, clear_qid, tmp_path / "clear.json")
    keys = tmp_path / "keys.json"
    with urllib.request.urlopen(  # noqa: S310 - the key made for the receipts is published
        f"{product.portal_url}/.well-known/sealmail/receipt-keys", timeout=10
    ) as r:
        keys.write_bytes(r.read())
    assert json.loads(published)["type"] == "sealmail-receipt-keys"
    assert {k["key_id"] for k in json.loads(keys.read_text())["keys"]} == {sealed["key_id"]}

    product.cli("receipt", sealed_qid, "--output", str(tmp_path / "sealed.pdf"))
    text = "".join(
        p.extract_text() for p in pypdf.PdfReader(tmp_path / "sealed.pdf").pages
    ).replace("\n", " ")
    assert "Signed receipt" in text and sealed["receipt"]["sha256"][:40] in text.replace(" ", "")
    assert RECIPIENT in text and "opened it in the secure portal" in text
    for path in (tmp_path / "sealed.json", tmp_path / "clear.json", tmp_path / "sealed.pdf"):
        ok = _verify(product, path, keys)
        assert ok.returncode == 0, ok.stderr
        assert "Valid receipt" in ok.stdout
    assert _kinds(sealed, RECIPIENT)[:2] == ["decided", "sealed"]
    assert {"notified", "opened", "downloaded"} <= set(_kinds(sealed, RECIPIENT))
    (delivered,) = [
        e for r in clear["receipt"]["recipients"] for e in r["events"] if e["kind"] == "delivered"
    ]
    assert delivered["detail"]["reply"].startswith("250")

    # the digest is the SHA-256 of the message as the archive exports it
    export = tmp_path / "export.zip"
    product.cli("archive", "export", tenant["id"], "--format", "zip", "--output", str(export))
    with zipfile.ZipFile(export) as z:
        digests = {
            hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist() if n.endswith(".eml")
        }
    assert sealed["receipt"]["sha256"] in digests and clear["receipt"]["sha256"] in digests

    # a changed receipt (one hex digit of the digest; one event removed): invalid, exit 1
    doc = json.loads((tmp_path / "sealed.json").read_text())
    digest = doc["receipt"]["sha256"]
    doc["receipt"]["sha256"] = ("0" if digest[0] != "0" else "1") + digest[1:]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    doc = json.loads((tmp_path / "sealed.json").read_text())
    doc["receipt"]["recipients"][0]["events"].pop()
    (tmp_path / "short.json").write_text(json.dumps(doc))
    for name in ("bad.json", "short.json"):
        bad = _verify(product, tmp_path / name, keys)
        assert bad.returncode == 1 and "invalid receipt: the signature does not match" in bad.stderr

    ok = product.cli("evidence", "verify", tenant["id"], check=False)
    assert ok.returncode == 0, ok.stderr
    assert product.stop() == 0
    (db,) = list(product.root.rglob("sealmail.db"))
    kept = {p: p.read_bytes() for p in db.parent.glob("sealmail.db*")}

    def broken_by(*statements: str) -> str:
        for p, data in kept.items():
            p.write_bytes(data)
        with sqlite3.connect(db) as c:
            for sql in statements:
                c.execute(sql)
        proc = product.cli("evidence", "verify", tenant["id"], check=False)
        assert proc.returncode == 1, proc.stdout
        return proc.stderr

    edited = broken_by(
        'UPDATE evidence_entries SET detail = \'{"reply": "250 forged"}\' WHERE seq = 3'
    )
    assert "entry 3 (" in edited and "was changed after it was written" in edited
    assert "entry 3 is missing" in broken_by("DELETE FROM evidence_entries WHERE seq = 3")
    reordered = broken_by(
        "UPDATE evidence_entries SET seq = -1 WHERE seq = 3",
        "UPDATE evidence_entries SET seq = 3 WHERE seq = 4",
        "UPDATE evidence_entries SET seq = 4 WHERE seq = -1",
    )
    assert "entry 3 (" in reordered and "does not follow entry 2" in reordered
