"""The notice and the code email, as a recipient reads them."""

from __future__ import annotations

import calendar

from branding.notifications import format_time, render_code_email, render_notification
from core.models import Tenant

EXPIRES = calendar.timegm((2025, 3, 14, 9, 30, 0))


def _tenant(**fields) -> Tenant:
    values = dict(
        id="t_acme",
        name="Acme",
        display_name="Acme Bank",
        logo_url="",
        brand_color="#0a7d4f",
        hide_subject=False,
        notification_from="",
    )
    values.update(fields)
    return Tenant(**values)


def _notice(tenant: Tenant | None = None, **kw):
    args = dict(
        sender_name="Alice Sender",
        sender_address="alice@acme.example",
        subject="Loan papers",
        link="https://portal.acme.example/m/TOKEN123",
        recipient="bob@client.example",
        expires_at=EXPIRES,
        portal_base_url="https://portal.acme.example",
    )
    args.update(kw)
    return render_notification(tenant or _tenant(), **args)


def test_notification_says_who_what_where_and_until_when() -> None:
    r = _notice()
    assert r.subject == "Secure message from Alice Sender: Loan papers"
    for body in (r.text, r.html):
        assert "Acme Bank" in body
        assert "Alice Sender" in body
        assert "Loan papers" in body
        assert "https://portal.acme.example/m/TOKEN123" in body
        assert "14 March 2025, 09:30 UTC" in body
        assert "portal.acme.example" in body
        assert "never ask for a password" in body
    assert 'href="https://portal.acme.example/m/TOKEN123"' in r.html
    assert "Open the secure message" in r.html
    assert "#0a7d4f" in r.html


def test_hidden_subject_appears_nowhere() -> None:
    r = _notice(subject=None)
    assert r.subject == "Secure message from Alice Sender"
    assert "Loan papers" not in r.text + r.html
    assert "Subject:" not in r.text


def test_logo_only_from_https_and_color_checked() -> None:
    r = _notice(_tenant(logo_url="https://cdn.acme.example/logo.png"))
    assert '<img src="https://cdn.acme.example/logo.png"' in r.html
    r = _notice(_tenant(logo_url="javascript:alert(1)", brand_color="red;x:y"))
    assert "javascript:" not in r.html and "<img" not in r.html
    assert "red;x:y" not in r.html and "#1f4e79" in r.html


def test_values_are_escaped_in_html_and_plain_in_text() -> None:
    r = _notice(
        _tenant(display_name="Acme <Bank> & Co"),
        sender_name='Eve <img src=x onerror="alert(1)">',
        subject="<script>alert(1)</script>",
    )
    assert "<script>" not in r.html and "<img src=x" not in r.html
    assert "&lt;script&gt;" in r.html and "Acme &lt;Bank&gt; &amp; Co" in r.html
    assert "<script>alert(1)</script>" in r.text  # text mail is not HTML
    assert "Acme <Bank> & Co" in r.text


def test_subject_line_cannot_break_the_header() -> None:
    r = _notice(subject="Hi\r\nBcc: victim@example.org", sender_name="Al\nice")
    assert "\n" not in r.subject and "\r" not in r.subject


def test_code_email() -> None:
    r = render_code_email(_tenant(), code="482913", recipient="bob@client.example", minutes=10)
    assert "482913" not in r.subject
    assert "Acme Bank" in r.subject
    for body in (r.text, r.html):
        assert "482913" in body
        assert "10 minutes" in body
        assert "bob@client.example" in body


def test_format_time() -> None:
    assert format_time(EXPIRES) == "14 March 2025, 09:30 UTC"
    assert format_time(0) == "1 January 1970, 00:00 UTC"


def test_notification_steers_to_the_portal_reply() -> None:
    r = _notice()
    for body in (r.text, r.html):
        flat = " ".join(body.split())
        assert "press Reply" in flat and "your answer stays encrypted" in flat
        assert "would not be encrypted and would not reach Alice Sender" in flat
