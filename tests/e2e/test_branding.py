"""A tenant's brand, set in the browser against the running product (issue 13, item 2): the
admin uploads a logo and changes texts and colour; the next notice (HTML part) shows them
with the logo inside the mail (no remote image), and the portal page it leads to shows them;
an SVG, a 20 MB image, a PNG decompression bomb and a JPEG with a script after its end are
handled as they must be."""

from __future__ import annotations

import io
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, make_message, parse, send
from tests.e2e.test_admin_policy import ADMIN, _admin_signs_in
from tests.e2e.test_conversations import _mails_to, _new_mail, browser  # noqa: F401
from tests.helpers.pages import look_at
from tests.helpers.smtp_sink import SmtpSink

BOB = "bob@recipient.test"
NAME = "Acme Legal Desk"
WORDS = "Our legal team sent you this document."
INTRO = "Welcome to the Acme legal desk."
FOOTER = "Acme plc, registered in England, no. 01234567."


def _png(path: Path, size: tuple[int, int] = (300, 100), color: str = "red") -> Path:
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def _html_part(msg: EmailMessage) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            return str(part.get_content())
    raise AssertionError("no HTML part")


def _save_logo(page: Any, base: str, path: Path) -> str:
    page.goto(f"{base}/admin/branding")
    page.set_input_files("#logo", str(path))
    page.click("button:has-text('Save the brand')")
    page.wait_for_load_state()
    return page.inner_text("main")


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_logo_texts_and_colour_reach_the_notice_and_the_portal(
    product: Product,
    sink: SmtpSink,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    product.init()
    tenant = product.create_tenant("Acme", "acme.example")
    product.cli("user", "add", "Acme", ADMIN, "--role", "admin")
    product.start()
    base = product.portal_url
    page = _admin_signs_in(browser, product, sink)

    page.goto(f"{base}/admin/branding")
    page.fill("#display_name", NAME)
    page.set_input_files("#logo", str(_png(tmp_path / "logo.png")))
    page.fill("#color", "#0b5d3b")
    page.fill("#notification_text", WORDS)
    page.fill("#portal_intro", INTRO)
    page.fill("#footer_text", FOOTER)
    page.fill("#read_button_text", "Read it securely")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("text=Preview (not saved)")
    frame = page.frame_locator("iframe.notice-preview")
    assert WORDS in frame.locator("body").inner_text()
    portal_frame = page.frame_locator("iframe.portal-preview")
    assert INTRO in portal_frame.locator("body").inner_text()
    look_at(page, "admin-branding-preview", group="admin")
    # nothing was saved by the preview: a contrast that fails is refused with its ratio
    page.fill("#color", "#f5f5f5")
    page.click("button:has-text('Save the brand')")
    assert re.search(r"contrast of \d+\.\d:1", page.inner_text("main"))
    page.fill("#color", "#0b5d3b")
    page.set_input_files("#logo", str(_png(tmp_path / "logo.png")))
    page.click("button:has-text('Save the brand')")
    page.wait_for_selector("text=Brand saved")

    msg = make_message("[secure] The contract", "Dear Bob, the contract.")
    send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])
    note = parse(_new_mail(sink, BOB, 0, "the notice").data)
    html = _html_part(note)
    for words in (NAME, WORDS, FOOTER, "Read it securely", "#0b5d3b"):
        assert words in html, words
    cid = re.search(r'<img src="cid:([^"]+)"', html)
    assert cid, "the logo is not embedded"
    images = [p for p in note.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == f"<{cid.group(1)}>"
    logo = Image.open(io.BytesIO(images[0].get_payload(decode=True)))
    assert logo.format == "PNG" and logo.size == (300, 100)
    assert "http" not in re.search(r"<img[^>]+>", html).group(0)  # nothing remote

    reader = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    reader.goto(find_link(note.as_bytes(), base))
    text = reader.inner_text("body")
    assert NAME in text and INTRO in text and FOOTER in text
    src = reader.get_attribute("img.brand-logo", "src")
    served = reader.request.get(base + src)
    assert served.status == 200 and served.headers["content-type"] == "image/png"
    look_at(reader, "entry-branded", group="reader")


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_hostile_logos_are_refused(
    product: Product,
    sink: SmtpSink,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    product.init()
    product.create_tenant("Acme", "acme.example")
    product.cli("user", "add", "Acme", ADMIN, "--role", "admin")
    product.start()
    base = product.portal_url
    page = _admin_signs_in(browser, product, sink)

    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    assert "SVG logos are not accepted" in _save_logo(page, base, svg)

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (20 * 1024 * 1024))
    assert "larger than 2 MB" in _save_logo(page, base, huge)

    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")
    assert bomb.stat().st_size < 2 * 1024 * 1024  # small on disk, 400 million pixels inside
    assert "too many pixels" in _save_logo(page, base, bomb) or "million pixels" in page.inner_text(
        "main"
    )

    jpeg = tmp_path / "logo.jpg"
    Image.new("RGB", (120, 60), "navy").save(jpeg, format="JPEG")
    jpeg.write_bytes(jpeg.read_bytes() + b"<script>alert('x')</script>")
    assert "Brand saved" in _save_logo(page, base, jpeg)  # accepted, and drawn anew:
    src = page.get_attribute("img.logo-now", "src")
    served = page.request.get(base + src)
    assert served.status == 200 and served.headers["content-type"] == "image/png"
    body = served.body()
    assert b"<script>" not in body and body.startswith(b"\x89PNG")
