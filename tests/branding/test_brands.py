"""Brands (issue 13, item 2) without a browser: contrast, logos, the fields' checks, a
policy rule's ``brand:`` and the notice that wears a brand with its logo inside the mail."""

from __future__ import annotations

import email
import io

import pytest
from PIL import Image

from branding.brands import BrandLook, check_colors, checked_fields
from branding.contrast import contrast_ratio
from branding.logos import reencode_logo
from branding.mail import compose
from branding.notifications import LOGO_CID, render_notification
from core.errors import PermanentError
from core.models import Tenant
from core.policy.engine import evaluate
from core.policy.extract import Limits, extract_facts
from core.policy.model import dump_policy, parse_policy


def _png(size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else 0).save(out, format=fmt)
    return out.getvalue()


def test_contrast_is_wcag() -> None:
    assert round(contrast_ratio("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast_ratio("#777777", "#ffffff"), 2) == 4.48
    check_colors("#1f4e79", "#ffffff")
    with pytest.raises(PermanentError, match="contrast of 1.0:1"):
        check_colors("#1f4e79", "#1f4e79")
    with pytest.raises(PermanentError, match="on white"):
        check_colors("#ffff00", "#000000")  # readable button, unreadable links
    with pytest.raises(PermanentError, match="#1f4e79"):
        check_colors("red", "#ffffff")


def test_logos_are_drawn_anew_within_limits() -> None:
    png, w, h = reencode_logo(_png((1200, 400)))
    assert (w, h) == (600, 200) and png.startswith(b"\x89PNG")
    jpeg = _png((100, 50), "JPEG") + b"<script>alert(1)</script>"
    png, _, _ = reencode_logo(jpeg)
    assert b"<script>" not in png and Image.open(io.BytesIO(png)).format == "PNG"
    assert reencode_logo(_png((64, 64), "WEBP"))[1] == 64
    for data, words in (
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
        (b"<?xml version='1.0'?><svg/>", "SVG"),
        (_png((10, 10), "GIF"), "PNG, JPEG or WebP"),
        (b"GIF89a" + b"\0" * 100, "PNG, JPEG or WebP"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024), "larger than 2 MB"),
        (_png((5000, 4000), mode="1"), "million pixels"),
        (b"", "choose an image"),
    ):
        with pytest.raises(PermanentError, match=words):
            reencode_logo(data)


def test_fields_are_checked() -> None:
    good = {"display_name": "Acme", "color": "#1f4e79", "text_color": "#ffffff"}
    assert checked_fields(good)["display_name"] == "Acme"
    for bad, words in (
        ({"display_name": ""}, "cannot be empty"),
        ({"privacy_url": "http://acme.example/p"}, "https://"),
        ({"footer_text": "x" * 1001}, "longer than 1000"),
    ):
        with pytest.raises(PermanentError, match=words):
            checked_fields({**good, **bad})


def test_a_rule_names_its_brand() -> None:
    text = (
        "rules:\n  - name: legal\n    when:\n      sender: [legal@acme.example]\n"
        "    action: encrypt\n    brand: legal\n"
    )
    policy = parse_policy(text)
    assert "brand: legal" in dump_policy(policy)
    raw = b"From: legal@acme.example\r\nSubject: x\r\n\r\nhello\r\n"
    facts = extract_facts(raw, Limits())
    [d] = evaluate(
        policy,
        facts,
        mail_from="legal@acme.example",
        recipients=["bob@client.example"],
        tenant_domains=["acme.example"],
    )
    assert d.explanation["brand"] == "legal"
    with pytest.raises(Exception, match="brand"):
        parse_policy(text.replace("brand: legal", "brand: 'Legal Team!'"))


def test_a_notice_wears_its_brand_with_the_logo_inside() -> None:
    tenant = Tenant(
        id="t_1",
        name="Acme",
        display_name="",
        brand_color="#1f4e79",
        hide_subject=False,
        logo_url="",
    )
    logo, _, _ = reencode_logo(_png((300, 100)))
    look = BrandLook(
        brand_id="b_1",
        name="legal",
        display_name="Acme Legal",
        color="#0b5d3b",
        text_color="#ffffff",
        notification_text="From our legal team.",
        footer_text="Acme plc",
        read_button_text="Read it",
        show_sender=False,
        show_subject=False,
        logo_png=logo,
    )
    rendered = render_notification(
        tenant,
        sender_name="Alice",
        sender_address="alice@acme.example",
        subject="Secret deal",
        link="https://p.example/m/x",
        recipient="bob@client.example",
        expires_at=0,
        portal_base_url="https://p.example",
        look=look,
        logo_src=f"cid:{LOGO_CID}",
    )
    assert rendered.subject == "Secure message from Acme Legal"  # no sender, no subject
    assert "Secret deal" not in rendered.text + rendered.html
    assert "alice@acme.example" not in rendered.html
    assert "From our legal team." in rendered.html and "Read it" in rendered.text
    raw = compose(
        from_addr="n@acme.example",
        to_addr="bob@client.example",
        rendered=rendered,
        inline_images=[(LOGO_CID, logo)],
    )
    msg = email.message_from_bytes(raw)
    types = [p.get_content_type() for p in msg.walk()]
    assert types == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    image = [p for p in msg.walk() if p.get_content_type() == "image/png"][0]
    assert image["Content-ID"] == f"<{LOGO_CID}>" and image.get_payload(decode=True) == logo


def test_the_cli_settings_follow_into_the_default_brand(services) -> None:  # noqa: ANN001
    """``tenant update --display-name/--brand-color/--hide-subject`` reach a saved default
    brand, so the tenant's older settings and its brand never disagree."""
    import asyncio

    from branding.brands import default_brand, follow_tenant, resolve
    from core.accounts.tenants import create_tenant, get_tenant

    async def run() -> None:
        async with services.db.session() as s:
            creds = await create_tenant(s, services.keyring, "Acme", ["acme.example"])
            tenant = await get_tenant(s, creds.tenant_id)
            await default_brand(s, tenant, "t")
            await follow_tenant(
                s,
                tenant,
                {"display_name": "Acme Bank", "brand_color": "#0b5d3b", "hide_subject": True},
                "cli",
            )
            await s.commit()
            look = await resolve(s, tenant)
        assert (look.display_name, look.color, look.show_subject) == ("Acme Bank", "#0b5d3b", False)
        await services.db.dispose()

    asyncio.run(run())
