"""``/admin/branding`` and a brand's own template on both databases: a template with an
error shows its line and is not saved, a good one is saved and the next notice uses it, the
default comes back; brands are added and deleted (never the default); the logo route serves
only the tenant's own re-encoded PNG."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from branding import custom_templates
from branding.models import Brand
from tests.portal.conftest import World, csrf_of
from tests.portal.test_admin import _add_user, sign_in

ADMIN = "admin@acme.example"


def _setup(world: World) -> str:
    t = world.tenant("Acme", "acme.example")
    world.run(_add_user, world.services, t, ADMIN, "admin")
    sign_in(world, ADMIN)
    return t


async def _brands(world: World, tenant_id: str) -> list[Brand]:
    async with world.services.db.session() as s:
        return list((await s.execute(select(Brand).where(Brand.tenant_id == tenant_id))).scalars())


def test_a_template_with_an_error_shows_its_line(world: World) -> None:
    t = _setup(world)
    try:
        page = world.client.get("/admin/branding")
        assert page.status_code == 200
        [brand] = world.run(_brands, world, t)
        assert brand.is_default and brand.name == "default"
        url = f"/admin/branding/{brand.id}/template"
        form = world.client.get(url)
        assert form.status_code == 200 and "{{ link }}" in form.text
        csrf = csrf_of(form.text)
        bad = "<p>{{ link }}</p>\n<p>\n{% for x in %}\n</p>"
        r = world.client.post(url, data={"csrf": csrf, "html": bad, "text": "", "action": "save"})
        assert r.status_code == 400 and "HTML template, line 3" in r.text
        assert world.run(_brands, world, t)[0].template_html == ""
        r = world.client.post(
            url,
            data={"csrf": csrf, "html": "<p>{{ __class__ }}{{ link }}</p>", "action": "check"},
        )
        assert r.status_code == 400 and "line 1" in r.text
        good = "<p>Hello from {{ tenant_name }}: <a href='{{ link }}'>open</a></p>"
        r = world.client.post(url, data={"csrf": csrf, "html": good, "text": "", "action": "check"})
        assert r.status_code == 200 and "Preview with sample values" in r.text
        assert "unsafe-inline" in r.headers["content-security-policy"]
        r = world.client.post(
            url, data={"csrf": csrf, "html": good, "text": "", "action": "save"},
            follow_redirects=False,
        )  # fmt: skip
        assert r.status_code == 303
        assert world.run(_brands, world, t)[0].template_html == good
        r = world.client.post(url, data={"csrf": csrf, "action": "reset"}, follow_redirects=False)
        assert r.status_code == 303 and world.run(_brands, world, t)[0].template_html == ""
    finally:
        custom_templates.close_worker()


def test_brands_are_added_deleted_and_their_logo_served(world: World) -> None:
    t = _setup(world)
    page = world.client.get("/admin/branding")
    csrf = csrf_of(page.text)
    r = world.client.post("/admin/branding", data={"csrf": csrf, "name": "Legal Team"})
    assert r.status_code == 400 and "lower-case" in r.text
    r = world.client.post(
        "/admin/branding", data={"csrf": csrf, "name": "legal"}, follow_redirects=False
    )
    assert r.status_code == 303
    brands = {b.name: b for b in world.run(_brands, world, t)}
    legal, default = brands["legal"], brands["default"]

    png = io.BytesIO()
    Image.new("RGB", (90, 30), "green").save(png, format="PNG")
    r = world.client.post(
        f"/admin/branding/{legal.id}",
        data={
            "csrf": csrf,
            "display_name": "Acme Legal",
            "color": "#0b5d3b",
            "text_color": "#ffffff",
        },
        files={"attachments": ("logo.png", png.getvalue(), "image/png")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:500]
    legal = {b.name: b for b in world.run(_brands, world, t)}["legal"]
    logo = world.client.get(f"/brand/{t}/logo/{legal.id}.png")
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"
    assert logo.content == legal.logo_png
    assert world.client.get(f"/brand/t_other/logo/{legal.id}.png").status_code == 404
    css = world.client.get(f"/brand/{t}.css?b={legal.id}").text
    assert "--brand: #0b5d3b" in css

    r = world.client.post(
        f"/admin/branding/{default.id}/delete", data={"csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 400 and "cannot be deleted" in r.text
    r = world.client.post(
        f"/admin/branding/{legal.id}/delete", data={"csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    assert [b.name for b in world.run(_brands, world, t)] == ["default"]
