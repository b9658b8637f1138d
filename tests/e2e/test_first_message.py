"""The first sealed message, end to end: SMTP in, notification out, browser in the portal."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_code, find_link, make_message, parse, send
from tests.helpers.moto_server import MotoServer
from tests.helpers.pages import ARGS, CHROMIUM
from tests.helpers.smtp_sink import SmtpSink


def _all_bytes_under(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def _send_and_read(product: Product, sink: SmtpSink, tmp_path: Path) -> tuple[str, list[str]]:
    """Send a [secure] message with two attachments, read it in the browser, check nothing
    of it is in clear at rest, in the mail or in the logs. Returns the portal link and the
    markers."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (scripts/test.sh installs it)")

    tenant = product.create_tenant("Acme", "acme.example")
    product.start()

    marker_body = "MARKER-BODY-" + secrets.token_hex(8)
    marker_file = "MARKER-FILE-" + secrets.token_hex(8)
    pdf = b"%PDF-1.4\n" + os.urandom(150_000) + marker_file.encode() + os.urandom(1000)
    notes = f"Notes line one\n{marker_file}\n".encode()
    msg = make_message(
        "[secure] Quarterly numbers",
        f"Dear Bob,\n\nthe numbers: {marker_body}\n\nAlice",
        attachments=[("report.pdf", "application/pdf", pdf), ("notes.txt", "text/plain", notes)],
    )
    reply = send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])
    assert re.match(r"2\.0\.0 queued as \S+", reply), reply

    note = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)[0]
    notification = parse(note.data)
    assert "[secure]" not in str(notification["Subject"])
    assert marker_body.encode() not in note.data and marker_file.encode() not in note.data
    assert note.data.count(b"X-Sealmail-Processed:") == 1
    link = find_link(note.data, product.portal_url)

    content, downloads = _read_in_browser(sink, link, tmp_path / "message.png")
    assert marker_body in content
    assert "Quarterly numbers" in content and "[secure]" not in content
    assert downloads["report.pdf"] == pdf
    assert downloads["notes.txt"] == notes

    # nothing of the message in clear at rest, in the notification or in the logs
    assert product.stop() == 0
    for marker in (marker_body, marker_file):
        for path, data in _all_bytes_under(product.root / "var"):
            assert marker.encode() not in data, f"{marker} found in {path}"
        assert marker not in product.logs()
        for m in sink.messages:
            assert marker.encode() not in m.data
    return link, [marker_body, marker_file]


def _read_in_browser(
    sink: SmtpSink,
    link: str,
    screenshot: Path,
    files: tuple[str, ...] = ("report.pdf", "notes.txt"),
) -> tuple[str, dict[str, bytes]]:
    """Open ``link``, ask for a code, enter it; the page text and the downloaded files."""
    from playwright.sync_api import sync_playwright

    seen = {id(m) for m in sink.messages}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(accept_downloads=True)
            page = ctx.new_page()
            page.goto(link)
            page.get_by_role("button", name=re.compile("code", re.I)).click()
            code_mail = sink.wait_for(
                lambda m: "bob@recipient.test" in m.rcpt_tos and id(m) not in seen, count=1
            )[-1]
            code = find_code(code_mail.data)
            page.locator("input[name=code]").fill(code)
            page.locator("input[name=code]").press("Enter")
            page.wait_for_url(re.compile(r"/messages/"))
            # the body is shown in a sandboxed frame or inline
            content = page.content() + "".join(f.content() for f in page.frames)
            downloads = {}
            for name in files:
                with page.expect_download() as info:
                    page.get_by_role("link", name=re.compile(re.escape(name))).first.click()
                downloads[name] = Path(info.value.path()).read_bytes()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return content, downloads


@pytest.mark.e2e
@pytest.mark.browser
def test_sealed_message_read_in_browser(product: Product, sink: SmtpSink, tmp_path: Path) -> None:
    _send_and_read(product, sink, tmp_path)


@pytest.mark.e2e
@pytest.mark.browser
def test_sealed_message_with_the_root_key_in_kms(
    sink: SmtpSink, tmp_path: Path, moto_server: MotoServer
) -> None:
    """The same run with root_key = aws-kms://... (moto's KMS on loopback) and the archive in
    an S3 bucket in compliance mode (moto's S3): init writes no key file at all (the
    derivation secret is in the database); after a root and a tenant KEK rotation the
    message still opens, ``archive verify`` finds every object whole and /readyz is ok."""
    import urllib.request

    import boto3

    from tests.helpers.stores import new_bucket, s3_client

    bucket = new_bucket(moto_server.endpoint, lock=True)
    kms = boto3.client("kms", endpoint_url=moto_server.endpoint, region_name="us-east-1")
    key_id = kms.create_key(Description="sealmail e2e root")["KeyMetadata"]["KeyId"]
    alias = "alias/sealmail-e2e-" + secrets.token_hex(4)
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)

    product = Product(tmp_path / "sealmail", sink.port)
    product.root.mkdir(parents=True)
    product.config.write_text(
        f'data_dir = "./var"\nroot_key = "aws-kms://{alias}"\n'
        f'kms_endpoint_url = "{moto_server.endpoint}"\n'
        f'archive_url = "s3://{bucket}/archive"\ns3_endpoint_url = "{moto_server.endpoint}"\n'
        f's3_object_lock = "compliance"\n'
    )
    product.init()
    try:
        assert not (product.root / "var" / "keys").exists()
        link, markers = _send_and_read(product, sink, tmp_path)

        rotated = json.loads(product.cli("key", "rotate", "--json").stdout)
        assert rotated["root_key_id"].startswith("aws-kms:arn:") and rotated["rewrapped"] >= 2
        rotated = json.loads(product.cli("key", "rotate", "--tenant", "Acme", "--json").stdout)
        assert rotated["version"] == 2 and rotated["rewrapped"] > 0

        product.start()
        content, downloads = _read_in_browser(sink, link, tmp_path / "again.png", ("notes.txt",))
        assert markers[0] in content and markers[1].encode() in downloads["notes.txt"]
        with urllib.request.urlopen(product.portal_url + "/readyz", timeout=10) as resp:
            ready = json.loads(resp.read())
        assert resp.status == 200 and ready["checks"]["archive"] == "ok", ready

        verified = json.loads(product.cli("archive", "verify", "--json").stdout)
        assert verified["checked"] >= 3 and verified["damaged"] == [], verified
        client = s3_client(moto_server.endpoint)
        names = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
        modes = {client.head_object(Bucket=bucket, Key=k).get("ObjectLockMode") for k in names}
        assert "COMPLIANCE" in modes, modes  # the archive copy is locked
    finally:
        product.stop()
