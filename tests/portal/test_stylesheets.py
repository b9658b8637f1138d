"""The portal's own stylesheets (portal/static/): nothing fetched from elsewhere, laid out
for phones too."""

from __future__ import annotations

import re

from portal.routes import STATIC_DIR


def test_stylesheet_is_self_contained() -> None:
    css = (STATIC_DIR / "portal.css").read_text()
    assert "@import" not in css and "@font-face" not in css
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    assert "@media (max-width" in css  # laid out for phones too
