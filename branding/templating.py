"""The one template environment: Jinja2's immutable sandbox with HTML autoescaping.

Every template runs here, ours and (later) the ones tenants write in the admin pages, so a
template can never reach Python internals (``''.__class__.__mro__`` raises
:class:`jinja2.exceptions.SecurityError`) nor mutate the objects it is given. HTML templates
(``.html``) are autoescaped; text templates (``.txt``) are not, they are mail bodies.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES_DIR = Path(__file__).parent / "templates"
DEFAULT_BRAND_COLOR = "#1f4e79"
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def make_environment(extra: Iterable[BaseLoader] = ()) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment over ``extra`` loaders first, then branding's own templates."""
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader([*extra, FileSystemLoader(TEMPLATES_DIR)]),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            disabled_extensions=("txt",),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["brand_color"] = safe_color
    return env


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    """The shared environment for branding's own templates (built on first use)."""
    return make_environment()


def render(name: str, context: Mapping[str, Any]) -> str:
    return environment().get_template(name).render(**context)


def render_string(source: str, context: Mapping[str, Any]) -> str:
    """Render a template given as text (a tenant's own), autoescaped as HTML, sandboxed."""
    return environment().from_string(source).render(**context)


def safe_color(value: object) -> str:
    """A CSS hex color, or the default: brand colors end up inside ``style`` attributes."""
    text = str(value or "").strip()
    return text if _COLOR.match(text) else DEFAULT_BRAND_COLOR


def safe_logo_url(value: object) -> str:
    """An ``https://`` logo URL, or "" (no ``javascript:``/``data:`` or plain-http logos)."""
    text = str(value or "").strip()
    if text.lower().startswith("https://") and not any(c.isspace() for c in text):
        return text
    return ""
