"""The sandbox every template runs in, ours and the tenants'."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from branding.templating import (
    environment,
    render_string,
    safe_color,
    safe_logo_url,
)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ x.__init__.__globals__ }}",
        "{{ x.__class__.__base__.__subclasses__() }}",
        "{{ lipsum.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    ],
)
def test_escapes_from_the_sandbox_raise(source: str) -> None:
    class Thing:
        pass

    with pytest.raises(SecurityError):
        render_string(source, {"x": Thing()})


def test_templates_cannot_mutate_what_they_are_given() -> None:
    items = [1, 2]
    with pytest.raises(SecurityError):
        render_string("{{ items.append(3) }}", {"items": items})
    assert items == [1, 2]


def test_html_in_variables_is_escaped() -> None:
    out = render_string("<p>{{ v }}</p><a title='{{ v }}'>", {"v": "<script>alert(1)</script>'\""})
    assert "<script>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&#39;" in out and "&#34;" in out


def test_text_templates_are_not_html_escaped() -> None:
    env = environment()
    assert env.autoescape("mail/notification.html") is True  # type: ignore[operator]
    assert env.autoescape("mail/notification.txt") is False  # type: ignore[operator]


def test_colors_and_logos_are_checked() -> None:
    assert safe_color("#0a7d4f") == "#0a7d4f"
    assert safe_color("#fff") == "#fff"
    for bad in ("red", "#12345g", "#123;background:url(x)", "", None, "expression(alert(1))"):
        assert safe_color(bad) == "#1f4e79"
    assert safe_logo_url("https://cdn.acme.example/logo.png") == "https://cdn.acme.example/logo.png"
    for bad in ("javascript:alert(1)", "http://acme.example/logo.png", "data:image/png;base64,x",
                "https://a b", ""):  # fmt: skip
        assert safe_logo_url(bad) == ""


def _portal_templates() -> list[Path]:
    """Every page template: all of them live under portal/templates, one folder per area."""
    portal_dir = Path(__file__).parents[2] / "portal" / "templates"
    return sorted(portal_dir.rglob("*.html"))


def test_portal_templates_obey_the_csp_and_load_nothing_from_elsewhere() -> None:
    """The portal's CSP forbids inline scripts and styles; nothing comes from a CDN but the
    Outlook add-in's Office.js, which Microsoft requires to be loaded from its own CDN."""
    files = _portal_templates()
    assert len(files) >= 6
    for path in files:
        source = path.read_text()
        for tag in re.findall(r"<script[^>]*>", source):  # only our own files, never inline
            src = re.search(r'\ssrc="([^"]+)"', tag)
            assert src, (path, tag)
            office = path.parent.name == "addin" and src.group(1) == "{{ office_js }}"
            assert src.group(1).startswith("/") or office, (path, tag)
        assert not re.search(r"<script[^>]*>[^<]", source), path  # nothing inside a script tag
        assert not re.search(r"\son[a-z]+\s*=", source), path  # no event handler attributes
        # the body frame has its own CSP allowing inline CSS; the brand's portal preview is
        # shown only inside a sandboxed frame of the branding page, whose CSP allows it
        if path.name not in ("body.html", "brand_portal_preview.html"):
            assert "style=" not in source and "<style" not in source, path
        # nothing loaded from elsewhere (a link a person follows is not loaded)
        assert not re.search(r"\ssrc=\"(https?:)?//", source), path
        assert not re.search(r"<link[^>]*href=\"(https?:)?//", source), path
