"""Encryption policy end to end: policy and keys set through the CLI, mail through SMTP,
output checked by the real ``gpg`` and ``openssl`` command lines; fail closed."""

from __future__ import annotations

import datetime
import json
import os
import secrets
import sqlite3
import subprocess
import time
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import Product
from tests.e2e.mail import make_message, parse, send
from tests.helpers import processes
from tests.helpers.smtp_sink import SmtpSink

CARD = "4111 1111 1111 1111"  # a test number that passes the Luhn check


def _gpg_home(tmp: Path, uid: str) -> Path:
    home = tmp / f"gnupg-{secrets.token_hex(3)}"
    home.mkdir(mode=0o700)
    processes.watch_gpg_home(home)
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase", "", "--quick-gen-key", uid, "future-default", "default", "never"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return home


def _gpg_export(home: Path, dest: Path) -> Path:
    out = subprocess.run(
        ["gpg", "--homedir", str(home), "--armor", "--export"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    dest.write_bytes(out.stdout)
    return dest


def _gpg_decrypt(home: Path, armored: bytes) -> bytes:
    out = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--decrypt"],
        input=armored, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return out.stdout


def _kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


def _cert(tmp: Path, email: str, days: float = 365) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, email)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp / f"{email}.crt"
    key_path = tmp / f"{email}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _policy(product: Product, text: str) -> None:
    path = product.root / "policy.yaml"
    path.write_text(text)
    product.cli("policy", "import", "Acme", str(path))


def _parts(msg) -> tuple[str, dict[str, bytes]]:  # noqa: ANN001
    body = msg.get_body(("plain",))
    files = {p.get_filename(): p.get_payload(decode=True) for p in msg.walk() if p.get_filename()}
    # the text as sent over SMTP is in canonical form (CRLF line ends)
    text = body.get_content().replace("\r\n", "\n") if body is not None else ""
    return text, files


@pytest.mark.e2e
def test_card_number_goes_out_pgp_mime_and_gpg_decrypts_it(
    product: Product, sink: SmtpSink, tmp_path: Path
) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    bob = _gpg_home(tmp_path, "Bob <bob@recipient.test>")
    try:
        product.cli("keys", "import", "Acme", str(_gpg_export(bob, tmp_path / "bob.asc")))
        _policy(
            product,
            "rules:\n"
            "  - name: card numbers\n"
            "    when: {detector: credit_card}\n"
            "    action: encrypt\n"
            "    method: auto\n",
        )
        product.start()
        attachment = os.urandom(40_000)
        original = make_message(
            "Invoice", f"Please charge card {CARD}.\n",
            attachments=[("scan.bin", "application/octet-stream", attachment)],
        )  # fmt: skip
        reply = send(product.smtp_port, original, tenant["smtp_username"], tenant["smtp_password"])
        queue_id = reply.split()[-1]
        got = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos, timeout=60)[0]
        assert CARD.encode() not in got.data and attachment[:64] not in got.data
        outer = parse(got.data)
        assert outer.get_content_type() == "multipart/encrypted"
        assert outer.get_param("protocol") == "application/pgp-encrypted"
        armored = outer.get_payload()[1].get_payload(decode=True)
        inner = message_from_bytes(_gpg_decrypt(bob, armored), policy=policy.default)
        text, files = _parts(inner)
        assert text == f"Please charge card {CARD}.\n"
        assert files == {"scan.bin": attachment}

        evidence = json.loads(
            urllib.request.urlopen(  # noqa: S310 - loopback
                urllib.request.Request(
                    f"{product.portal_url}/api/v1/messages/{queue_id}",
                    headers={"Authorization": f"Bearer {tenant['api_key']}"},
                ),
                timeout=30,
            ).read()
        )
        (rcpt,) = evidence["recipients"]
        assert rcpt["disposition"] == "pgp" and "card numbers" in rcpt["reason"]
        assert CARD not in json.dumps(evidence)
    finally:
        _kill_agent(bob)


@pytest.mark.e2e
def test_smime_output_is_decrypted_by_openssl(
    product: Product, sink: SmtpSink, tmp_path: Path
) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    cert, key = _cert(tmp_path, "carol@recipient.test")
    product.cli("keys", "import", "Acme", str(cert))
    _policy(
        product,
        "rules:\n"
        "  - name: partners by S/MIME\n"
        "    when: {recipient_domain: [recipient.test]}\n"
        "    action: encrypt\n"
        "    method: smime\n",
    )
    product.start()
    attachment = os.urandom(20_000)
    original = make_message(
        "Contract", "The signed contract is attached.\n", to="carol@recipient.test",
        attachments=[("contract.pdf", "application/pdf", attachment)],
    )  # fmt: skip
    send(product.smtp_port, original, tenant["smtp_username"], tenant["smtp_password"])
    got = sink.wait_for(lambda m: "carol@recipient.test" in m.rcpt_tos, timeout=60)[0]
    assert b"signed contract" not in got.data
    assert parse(got.data).get_content_type() == "application/pkcs7-mime"
    smime = tmp_path / "out.eml"
    smime.write_bytes(got.data)
    out = subprocess.run(
        ["openssl", "cms", "-decrypt", "-in", str(smime), "-recip", str(cert), "-inkey", str(key)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    inner = message_from_bytes(out.stdout, policy=policy.default)
    text, files = _parts(inner)
    assert text == "The signed contract is attached.\n"
    assert files == {"contract.pdf": attachment}


def _wait_dsns(sink: SmtpSink, count: int, timeout: float) -> list:  # noqa: ANN401
    return sink.wait_for(lambda m: m.mail_from in ("", "<>"), timeout=timeout, count=count)


@pytest.mark.e2e
def test_canary_encryption_failures_never_leave_in_clear(sink: SmtpSink, tmp_path: Path) -> None:
    """100 messages that policy says to encrypt, with encryption made to fail three ways:
    none reaches the relay (in clear or at all); each is deferred, then bounced."""
    product = Product(tmp_path / "sealmail", sink.port)
    product.init(queue_lifetime="8s", queue_min_backoff="1s", queue_max_backoff="2s")
    tenant = product.create_tenant("Acme", "acme.example")
    dave = _gpg_home(tmp_path, "Dave <dave@recipient.test>")
    erin = _gpg_home(tmp_path, "Erin <erin@recipient.test>")
    try:
        product.cli("keys", "import", "Acme", str(_gpg_export(dave, tmp_path / "dave.asc")))
        product.cli("keys", "import", "Acme", str(_gpg_export(erin, tmp_path / "erin.asc")))
    finally:
        _kill_agent(dave)
        _kill_agent(erin)
    expiring, _ = _cert(tmp_path, "frank@recipient.test", days=4 / 86400)  # 4 seconds
    product.cli("keys", "import", "Acme", str(expiring))
    _policy(
        product,
        "rules:\n"
        "  - name: pgp partners\n"
        "    when: {recipient: [dave@recipient.test, erin@recipient.test]}\n"
        "    action: encrypt\n"
        "    method: pgp\n"
        "  - name: smime partners\n"
        "    when: {recipient: [frank@recipient.test]}\n"
        "    action: encrypt\n"
        "    method: smime\n",
    )
    # a broken key: Erin's stored key material is damaged
    db = sqlite3.connect(product.root / "var" / "sealmail.db")
    with db:
        db.execute(
            "UPDATE recipient_keys SET material = ? WHERE email = ?",
            (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbroken\n", "erin@recipient.test"),
        )
    db.close()
    time.sleep(4.5)  # Frank's certificate has expired
    marker = "CANARY-" + secrets.token_hex(6)

    def burst(rcpt: str, count: int) -> None:
        for i in range(count):
            msg = make_message(f"Batch {i}", f"{marker} {i}", to=rcpt)
            send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])

    # 1) gpg missing from PATH (the server runs with an empty PATH)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    product.start(env={"PATH": str(empty)})
    burst("dave@recipient.test", 34)
    queue = json.loads(product.cli("queue", "list", "--json").stdout)
    waiting = [q for q in queue if q["kind"] == "incoming"]
    assert waiting, "the messages should wait, deferred"
    _wait_dsns(sink, 34, timeout=120)
    assert product.stop() == 0
    # 2) a broken key and 3) an expired certificate, with gpg on the PATH
    product.start()
    burst("erin@recipient.test", 33)
    burst("frank@recipient.test", 33)
    dsns = _wait_dsns(sink, 100, timeout=180)
    time.sleep(2)
    clear = [m for m in sink.messages if m.mail_from not in ("", "<>")]
    assert clear == [], f"{len(clear)} messages reached the relay"
    assert len([m for m in sink.messages if m.mail_from in ("", "<>")]) == 100
    for d in dsns:
        assert d.rcpt_tos == ["alice@acme.example"]
        assert b"5.7.0" in d.data
        assert marker.encode() not in d.data


@pytest.mark.e2e
def test_hold_release_and_reject(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    _policy(
        product,
        "rules:\n"
        "  - name: wire transfers\n"
        "    when: {subject_contains: wire transfer}\n"
        "    action: hold\n",
    )
    product.start()
    for to in ("gina@recipient.test", "hank@recipient.test"):
        msg = make_message("Wire transfer today", "Send it now.", to=to)
        send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])
    headers = {"Authorization": f"Bearer {tenant['api_key']}"}

    def api(method: str, path: str) -> dict:
        req = urllib.request.Request(
            f"{product.portal_url}{path}",
            method=method,
            headers=headers,
            data=b"" if method == "POST" else None,
        )
        return json.loads(urllib.request.urlopen(req, timeout=30).read())  # noqa: S310

    deadline = time.time() + 30
    held: list = []
    while time.time() < deadline and len(held) < 2:
        body = api("GET", "/api/v1/quarantine")
        held = body["items"]
        time.sleep(0.3)
    assert len(held) == 2
    assert not sink.messages  # nothing leaves while held
    by_rcpt = {h["recipients"][0]: h for h in held}
    api("POST", f"/api/v1/quarantine/{by_rcpt['gina@recipient.test']['id']}/release")
    api("POST", f"/api/v1/quarantine/{by_rcpt['hank@recipient.test']['id']}/reject")
    got = sink.wait_for(lambda m: "gina@recipient.test" in m.rcpt_tos, timeout=60)[0]
    assert b"Send it now." in got.data
    notice = sink.wait_for(lambda m: "alice@acme.example" in m.rcpt_tos, timeout=60)[0]
    assert b"Send it now." not in notice.data
    time.sleep(2)
    assert not [m for m in sink.messages if "hank@recipient.test" in m.rcpt_tos]


@pytest.mark.e2e
def test_require_tls_without_tls_falls_back_to_the_portal(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    _policy(
        product,
        "rules:\n"
        "  - name: lawyers over TLS\n"
        "    when: {recipient_domain: [lawfirm.example]}\n"
        "    action: require_tls\n",
    )
    product.start()  # the sink offers no STARTTLS
    msg = make_message("Case notes", "Privileged notes.", to="ivan@lawfirm.example")
    send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])
    got = sink.wait_for(lambda m: "ivan@lawfirm.example" in m.rcpt_tos, timeout=60)
    assert b"Privileged notes." not in got[0].data
    assert f"{product.portal_url}/m/".encode() in got[0].data
