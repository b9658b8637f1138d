"""The partner console on both databases (issue 14, item 1): partner people sign in with a
mailed code; each partner sees only its own tenants (pages and ids of another partner's are
404); a partner admin creates a trial (credentials shown once, the partner's default brand),
converts it, suspends, resumes and terminates (after typing the name); a technician looks and
opens consoles but changes nothing; opening a tenant's admin console is in that tenant's audit
log, and so is what the partner does there; NFR limits refuse a user over the agreement."""

from __future__ import annotations

import datetime
import re

from sqlalchemy import select

from branding.models import Brand
from core.accounts.partner_users import add_partner_user
from core.accounts.partners import create_partner
from core.accounts.tenants import create_tenant
from core.models import AuditEvent, Partner, Tenant, User
from core.services import Services
from tests.portal.conftest import Browser, World, csrf_of

ADMIN_A = "boss@msp-a.example"
TECH_A = "tech@msp-a.example"
ADMIN_B = "boss@msp-b.example"


async def _partner(services: Services, name: str, people: list[tuple[str, str]], **limits) -> str:  # noqa: ANN003
    async with services.db.session() as s:
        p = await create_partner(s, name)
        for key, value in limits.items():
            setattr(p, key, value)
        for email, role in people:
            await add_partner_user(s, p, email, role)
        await s.commit()
        return p.id


async def _tenant_of(
    services: Services, partner_id: str, name: str, domain: str, plan: str = "paid"
) -> str:
    async with services.db.session() as s:
        creds = await create_tenant(
            s, services.keyring, name, [domain], partner=partner_id, plan=plan
        )
        await s.commit()
        return creds.tenant_id


async def _rows(services: Services, model, *where):  # noqa: ANN001, ANN202
    async with services.db.session() as s:
        return list((await s.execute(select(model).where(*where))).scalars())


def sign_in(world: World, email: str, client: Browser | None = None):  # noqa: ANN201
    c = client or world.client
    page = c.get("/partner/login")
    assert page.status_code == 200, page.text
    r = c.post("/partner/login", data={"csrf": csrf_of(page.text), "email": email})
    assert r.status_code == 200 and "Enter your code" in r.text, r.text
    r = c.post(
        "/partner/verify",
        data={"csrf": csrf_of(r.text), "code": world.latest_code()},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/partner", r.text
    return c


def _post(c, page: str, action: str, data: dict[str, str]):  # noqa: ANN001, ANN202
    csrf = csrf_of(c.get(page).text)
    return c.post(action, data={"csrf": csrf, **data}, follow_redirects=False)


def test_two_partners_see_only_their_own_tenants(world: World) -> None:
    pa = world.run(_partner, world.services, "MSP A", [(ADMIN_A, "partner-admin")])
    pb = world.run(_partner, world.services, "MSP B", [(ADMIN_B, "partner-admin")])
    ta = world.run(_tenant_of, world.services, pa, "Alpha", "alpha.example")
    tb = world.run(_tenant_of, world.services, pb, "Bravo", "bravo.example")
    assert world.client.get("/partner", follow_redirects=False).status_code == 303
    # an address that is nobody's gets the same page and no mail
    before = len(world.codes())
    page = world.client.get("/partner/login")
    r = world.client.post(
        "/partner/login", data={"csrf": csrf_of(page.text), "email": "x@y.example"}
    )
    assert r.status_code == 200 and "Enter your code" in r.text
    assert len(world.codes()) == before
    sign_in(world, ADMIN_A)
    home = world.client.get("/partner")
    assert home.status_code == 200
    assert "Alpha" in home.text and "Bravo" not in home.text
    assert "Active, on a paid plan." in home.text and "alpha.example" in home.text
    assert world.client.get(f"/partner/tenants/{ta}").status_code == 200
    # another partner's tenant: not found, for pages and actions alike
    assert world.client.get(f"/partner/tenants/{tb}").status_code == 404
    r = _post(world.client, "/partner", f"/partner/tenants/{tb}/standing", {"action": "suspend"})
    assert r.status_code == 404
    r = _post(world.client, "/partner", f"/partner/tenants/{tb}/console", {})
    assert r.status_code == 404
    assert world.run(_rows, world.services, Tenant, Tenant.id == tb)[0].standing == "active"
    # the sign-in is audited under the partner
    signins = world.run(_rows, world.services, AuditEvent, AuditEvent.action == "partner.signin")
    assert [e.tenant_id for e in signins] == [pa]


def test_create_a_trial_convert_suspend_resume_terminate(world: World) -> None:
    pa = world.run(_partner, world.services, "MSP A", [(ADMIN_A, "partner-admin")])
    sign_in(world, ADMIN_A)
    # the default brand first: new tenants start from it
    page = world.client.get("/partner/brand")
    r = world.client.post(
        "/partner/brand",
        data={
            "csrf": csrf_of(page.text),
            "color": "#7a1f3d",
            "text_color": "#ffffff",
            "footer_text": "Looked after by MSP A",
            "show_sender": "yes",
        },
        files={"logo": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    bad = _post(
        world.client,
        "/partner/tenants/new",
        "/partner/tenants",
        {"name": "Gamma", "domains": "gamma.example", "plan": "trial", "trial_ends": "soon"},
    )
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
    yesterday = (
        datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    ).isoformat()
    created = _post(
        world.client,
        "/partner/tenants/new",
        "/partner/tenants",
        {
            "name": "Gamma",
            "domains": "gamma.example, gamma.test",
            "plan": "trial",
            "trial_ends": yesterday,
            "admin_email": "it@gamma.example",
        },
    )
    assert created.status_code == 201, created.text
    token = re.search(r"Connector token</dt><dd><code class=\"secret\">([^<]+)<", created.text)
    assert token and len(token.group(1)) >= 40
    tenant = world.run(_rows, world.services, Tenant, Tenant.name == "Gamma")[0]
    assert tenant.partner_id == pa and tenant.plan == "trial"
    assert tenant.trial_ends_on.isoformat() == yesterday
    brand = world.run(_rows, world.services, Brand, Brand.tenant_id == tenant.id)[0]
    assert brand.color == "#7a1f3d" and brand.footer_text == "Looked after by MSP A"
    assert (
        world.run(_rows, world.services, User, User.tenant_id == tenant.id)[0].email
        == "it@gamma.example"
    )
    page = world.client.get(f"/partner/tenants/{tenant.id}")
    assert f"Its trial ended on {yesterday}" in page.text
    r = _post(
        world.client,
        f"/partner/tenants/{tenant.id}",
        f"/partner/tenants/{tenant.id}/plan",
        {"plan": "paid"},
    )
    assert r.status_code == 303
    page = world.client.get(r.headers["location"])
    assert "now on a paid plan" in page.text and "Active, on a paid plan." in page.text
    tenant = world.run(_rows, world.services, Tenant, Tenant.id == tenant.id)[0]
    assert tenant.plan == "paid" and tenant.trial_ends_on is None
    for action, standing in (("suspend", "suspended"), ("resume", "active")):
        r = _post(
            world.client,
            f"/partner/tenants/{tenant.id}",
            f"/partner/tenants/{tenant.id}/standing",
            {"action": action},
        )
        assert r.status_code == 303
        assert (
            world.run(_rows, world.services, Tenant, Tenant.id == tenant.id)[0].standing == standing
        )
    r = _post(
        world.client,
        f"/partner/tenants/{tenant.id}",
        f"/partner/tenants/{tenant.id}/standing",
        {"action": "terminate", "confirm": "gamma"},
    )
    assert r.status_code == 400 and "type the tenant&#39;s name, Gamma" in r.text
    r = _post(
        world.client,
        f"/partner/tenants/{tenant.id}",
        f"/partner/tenants/{tenant.id}/standing",
        {"action": "terminate", "confirm": "Gamma"},
    )
    assert r.status_code == 303
    assert (
        world.run(_rows, world.services, Tenant, Tenant.id == tenant.id)[0].standing == "terminated"
    )
    actions = [
        e.action
        for e in world.run(_rows, world.services, AuditEvent, AuditEvent.tenant_id == tenant.id)
    ]
    for expected in (
        "tenant.create",
        "tenant.plan",
        "tenant.suspended",
        "tenant.active",
        "tenant.terminated",
    ):
        assert expected in actions
    actors = {
        e.actor
        for e in world.run(_rows, world.services, AuditEvent, AuditEvent.action == "tenant.plan")
    }
    assert actors == {f"partner:{ADMIN_A}"}


def test_console_as_partner_is_audited_and_a_technician_changes_nothing(world: World) -> None:
    pa = world.run(
        _partner,
        world.services,
        "MSP A",
        [(ADMIN_A, "partner-admin"), (TECH_A, "partner-tech")],
        nfr_max_users=1,
    )
    t = world.run(_tenant_of, world.services, pa, "Delta", "delta.example", "nfr")
    tech = sign_in(world, TECH_A)
    assert tech.get("/partner/tenants/new").status_code == 404
    r = _post(
        tech, f"/partner/tenants/{t}", f"/partner/tenants/{t}/standing", {"action": "suspend"}
    )
    assert r.status_code == 404
    page = tech.get(f"/partner/tenants/{t}")
    assert "allows 1 users (it has 0)" in page.text
    r = _post(tech, f"/partner/tenants/{t}", f"/partner/tenants/{t}/console", {})
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    admin = tech.get("/admin")
    assert admin.status_code == 200 and "as a partner (MSP A)" in admin.text
    # inside, the partner acts as an admin; the NFR agreement holds
    r = _post(tech, "/admin/users", "/admin/users", {"email": "one@delta.example", "role": "admin"})
    assert r.status_code == 303
    r = _post(
        tech, "/admin/users", "/admin/users", {"email": "two@delta.example", "role": "sender"}
    )
    assert r.status_code == 400 and "not-for-resale" in r.text and "allows 1 users" in r.text
    log = world.run(_rows, world.services, AuditEvent, AuditEvent.tenant_id == t)
    opened = [e for e in log if e.action == "partner.console.open"]
    assert len(opened) == 1 and opened[0].actor == f"partner:{TECH_A}"
    added = [e for e in log if e.action == "user.add"]
    assert [e.actor for e in added] == [f"partner:{TECH_A}"]
    assert tech.get("/admin/audit").text.count(f"partner:{TECH_A}") >= 2
    # back to the partner console without a new code
    r = _post(tech, "/admin", "/partner/return", {})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/partner/tenants/{t}")
    assert "You left the admin console" in tech.get(r.headers["location"]).text
    assert tech.get("/admin", follow_redirects=False).status_code == 303  # no longer inside


def test_another_partners_person_cannot_keep_a_console_session(world: World) -> None:
    pa = world.run(
        _partner, world.services, "MSP A", [(ADMIN_A, "partner-admin"), (TECH_A, "partner-tech")]
    )
    t = world.run(_tenant_of, world.services, pa, "Echo", "echo.example")
    c = sign_in(world, TECH_A)
    r = _post(c, f"/partner/tenants/{t}", f"/partner/tenants/{t}/console", {})
    assert r.status_code == 303
    assert c.get("/admin").status_code == 200
    # the technician is removed by the partner admin: the console session ends at once
    boss = sign_in(world, ADMIN_A, world.new_client())
    person = world.run(
        _rows,
        world.services,
        __import__("core.accounts.models", fromlist=["PartnerUser"]).PartnerUser,
    )
    tech_id = next(p.id for p in person if p.email == TECH_A)
    r = _post(boss, "/partner/people", f"/partner/people/{tech_id}/remove", {})
    assert r.status_code == 303
    assert c.get("/admin", follow_redirects=False).status_code == 303


def test_partner_api_keys_and_people(world: World) -> None:
    world.run(_partner, world.services, "MSP A", [(ADMIN_A, "partner-admin")])
    sign_in(world, ADMIN_A)
    r = _post(world.client, "/partner/api-keys", "/partner/api-keys", {"label": "PSA"})
    assert r.status_code == 201
    key = re.search(r"<code class=\"secret\">(smp_[^<]+)</code>", r.text)
    assert key
    r = _post(
        world.client,
        "/partner/people",
        "/partner/people",
        {"email": "new@msp-a.example", "role": "partner-tech"},
    )
    assert r.status_code == 303
    page = world.client.get("/partner/people")
    assert "new@msp-a.example" in page.text and "has not signed in yet" in page.text
    # the last partner admin stays
    me = world.run(
        _rows,
        world.services,
        __import__("core.accounts.models", fromlist=["PartnerUser"]).PartnerUser,
    )
    boss_id = next(p.id for p in me if p.email == ADMIN_A)
    r = _post(world.client, "/partner/people", f"/partner/people/{boss_id}/remove", {})
    assert r.status_code == 400 and "last partner admin" in r.text
    assert world.run(_rows, world.services, Partner)[0].name == "MSP A"


def test_setup_page_and_live_check_from_the_partner_console(world: World) -> None:
    pa = world.run(_partner, world.services, "MSP A", [(TECH_A, "partner-tech")])
    pb = world.run(_partner, world.services, "MSP B", [(ADMIN_B, "partner-admin")])
    t = world.run(_tenant_of, world.services, pa, "Foxtrot", "foxtrot.example")
    other = world.run(_tenant_of, world.services, pb, "Golf", "golf.example")
    c = sign_in(world, TECH_A)
    page = c.get(f"/partner/tenants/{t}/setup")
    assert page.status_code == 200
    assert "New-OutboundConnector" in page.text and "foxtrot.example" in page.text
    assert c.get(f"/partner/tenants/{other}/setup").status_code == 404
    assert c.get(f"/partner/tenants/{t}/setup/check?format=json").json()["state"] == "none"
    r = _post(c, f"/partner/tenants/{t}/setup", f"/partner/tenants/{t}/setup/check", {})
    assert r.status_code == 303
    assert c.get(f"/partner/tenants/{t}/setup/check?format=json").json()["state"] == "waiting"
    r = _post(c, f"/partner/tenants/{t}/setup", f"/partner/tenants/{t}/setup/tokens", {})
    assert r.status_code == 200 and 'id="new-token"' in r.text
    r = _post(c, f"/partner/tenants/{t}/setup", f"/partner/tenants/{other}/setup/check", {})
    assert r.status_code == 404
    log = world.run(_rows, world.services, AuditEvent, AuditEvent.tenant_id == t)
    done = {(e.action, e.actor) for e in log if e.action.startswith(("setup.", "tenant.conn"))}
    assert done == {
        ("setup.check.open", f"partner:{TECH_A}"),
        ("tenant.connector_token.issue", f"partner:{TECH_A}"),
    }


def test_the_tenant_sees_its_own_trial_and_licence(world: World) -> None:
    from tests.portal.test_admin import _add_user
    from tests.portal.test_admin import sign_in as admin_sign_in

    pa = world.run(
        _partner, world.services, "MSP A", [(ADMIN_A, "partner-admin")], nfr_max_messages=50
    )
    t = world.run(_tenant_of, world.services, pa, "Hotel", "hotel.example", "nfr")
    world.run(_add_user, world.services, t, "it@hotel.example", "admin")
    c = admin_sign_in(world, "it@hotel.example")
    page = c.get("/admin/billing")
    assert page.status_code == 200
    assert (
        "not-for-resale licence, which allows any number of users and 50 messages a month "
        "(0 sent this month)" in page.text
    )
