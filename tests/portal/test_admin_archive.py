"""/admin/archive and /api/v1/archive on both databases, without a browser: search form and
results, pagination, downloads (zip with manifest, mbox), roles, tenant isolation, and the
audit log without query text."""

from __future__ import annotations

import email
import hashlib
import io
import json
import re
import zipfile
from email.policy import default as default_policy

from sqlalchemy import select

from archive import index
from core.hashing import sha256_hex
from core.ids import new_token
from core.models import ApiKey, AuditEvent
from core.services import Services
from tests.portal.conftest import World
from tests.portal.test_admin import _add_user, sign_in

WORD = "Pangolin"


def original(n: int, domain: str, attachment: bool = False) -> bytes:
    head = (
        f"From: Alice <alice@{domain}>\r\nTo: bob{n}@partner.example\r\n"
        f"Subject: {WORD} memo {n}\r\nDate: Tue, 04 Mar 2025 10:15:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
    )
    if not attachment:
        return (head + f"Content-Type: text/plain\r\n\r\nmemo {n}\r\nFrom me\r\n").encode()
    return (
        head + 'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\n'
        "Content-Type: text/plain\r\n\r\nsee attached\r\n--zz\r\n"
        'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="x.pdf"\r\n'
        "\r\nPDF\r\n--zz--\r\n"
    ).encode()


async def archive_messages(services: Services, tenant_id: str, domain: str, count: int) -> None:
    """Archive entries as the pipeline makes them (sealed original, summary, tokens)."""
    async with services.db.session() as s:
        for n in range(count):
            raw = original(n, domain, attachment=n == 0)
            obj = await services.vault.seal(s, tenant_id, raw, "raw")
            msg = email.message_from_bytes(raw, policy=default_policy)
            summary = index.summarise(msg, len(raw), hashlib.sha256(raw).hexdigest(),
                                      f"alice@{domain}", [f"bob{n}@partner.example"])  # fmt: skip
            await index.record(
                services, s, tenant_id=tenant_id, source="gateway", message_id=None,
                object_id=obj.id, summary=summary, decisions=["portal" if n % 2 else "clear"],
                received_at=1_740_000_000.0 + n * 60,
            )  # fmt: skip
        await s.commit()


async def api_key(services: Services, tenant_id: str, role: str) -> str:
    key = "smk_" + new_token(32)
    async with services.db.session() as s:
        s.add(ApiKey(key_hash=sha256_hex(key), tenant_id=tenant_id, role=role, prefix=key[:8]))
        await s.commit()
    return key


async def audit_rows(services: Services) -> list[AuditEvent]:
    async with services.db.session() as s:
        rows = (await s.execute(select(AuditEvent))).scalars().all()
    return [r for r in rows if r.action.startswith("archive.")]


def setup(world: World) -> tuple[str, str]:
    a = world.tenant("Acme", "acme.example")
    b = world.tenant("Beta", "beta.example")
    world.run(_add_user, world.services, a, "officer@acme.example", "compliance")
    world.run(_add_user, world.services, b, "officer@beta.example", "admin")
    world.run(archive_messages, world.services, a, "acme.example", 55)
    world.run(archive_messages, world.services, b, "beta.example", 2)
    return a, b


def test_archive_page_search_pages_and_downloads(world: World) -> None:
    a, b = setup(world)
    assert world.client.get("/admin/archive", follow_redirects=False).status_code == 303
    sign_in(world, "officer@acme.example")
    form = world.client.get("/admin/archive")
    assert form.status_code == 200 and 'name="subject"' in form.text
    assert WORD not in form.text  # no search yet, nothing shown
    r = world.client.get("/admin/archive", params={"subject": WORD.lower()})
    assert r.status_code == 200
    assert "55 messages" in r.text and "Page 1 of 2" in r.text
    assert f"{WORD} memo 54" in r.text and f"{WORD} memo 4<" not in r.text  # newest first
    assert "alice@beta.example" not in r.text
    nxt = re.search(r'href="([^"]*page=2[^"]*)" rel="next"', r.text).group(1)
    page2 = world.client.get("/admin/archive" + nxt.replace("&amp;", "&"))
    assert "Page 2 of 2" in page2.text and f"{WORD} memo 4<" in page2.text
    r = world.client.get(
        "/admin/archive", params={"to": "bob7@partner.example", "decision": "portal"}
    )
    assert "1 message<" in r.text and f"{WORD} memo 7" in r.text
    r = world.client.get("/admin/archive", params={"has_attachment": "1"})
    assert "1 message<" in r.text and "x.pdf" in r.text
    bad = world.client.get("/admin/archive", params={"after": "soon"})
    assert bad.status_code == 400 and "not a date" in bad.text
    # download: the zip of a search result, read back with zipfile
    dl = world.client.get(
        "/admin/archive/export", params={"subject": WORD, "decision": "clear", "format": "zip"}
    )
    assert dl.status_code == 200 and dl.headers["content-type"] == "application/zip"
    assert dl.headers["content-disposition"].startswith("attachment;")
    zf = zipfile.ZipFile(io.BytesIO(dl.content))
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["entries"] == 28
    for row in manifest["files"]:
        body = zf.read(row["file"])
        assert hashlib.sha256(body).hexdigest() == row["sha256"] == row["sealed_sha256"]
        assert email.message_from_bytes(body)["From"] == "Alice <alice@acme.example>"
    mbox = world.client.get("/admin/archive/export", params={"to": "bob3@partner.example",
                                                             "format": "mbox"})  # fmt: skip
    assert mbox.status_code == 200 and mbox.content.startswith(b"From alice@acme.example ")
    assert b"\n>From me\n" in mbox.content and mbox.content.count(b"\nFrom ") == 0
    assert world.client.get("/admin/archive/export", params={"format": "pdf"}).status_code == 400
    events = world.run(audit_rows, world.services)
    assert {e.action for e in events} == {"archive.search", "archive.export"}
    assert all(e.tenant_id == a and e.actor == "officer@acme.example" for e in events)
    assert not any(WORD.lower() in e.detail.lower() or "bob7" in e.detail for e in events)


def test_other_tenant_officer_sees_only_their_own(world: World) -> None:
    setup(world)
    sign_in(world, "officer@beta.example")
    r = world.client.get("/admin/archive", params={"subject": WORD})
    assert "2 messages" in r.text and "alice@acme.example" not in r.text
    dl = world.client.get("/admin/archive/export", params={"format": "zip"})
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(dl.content)).read("manifest.json"))
    assert manifest["entries"] == 2


def test_api_search_and_export(world: World) -> None:
    a, b = setup(world)
    key_a = world.run(api_key, world.services, a, "compliance")
    key_b = world.run(api_key, world.services, b, "admin")
    key_sender = world.run(api_key, world.services, a, "sender")
    c = world.client

    def get(path: str, key: str | None, **params: str):  # noqa: ANN202
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return c.get(path, params=params, headers=headers)

    assert get("/api/v1/archive/search", None).status_code == 401
    assert get("/api/v1/archive/search", "smk_wrong").status_code == 401
    assert get("/api/v1/archive/search", key_sender).status_code == 403
    r = get("/api/v1/archive/search", key_a, subject=WORD, limit="10", page="6")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["total"] == 55 and body["pages"] == 6 and len(body["items"]) == 5
    assert [i["subject"] for i in body["items"]][0] == f"{WORD} memo 4"
    crit = {"from": "alice@acme.example", "to": "bob0@partner.example"}
    (hit,) = get("/api/v1/archive/search", key_a, **crit).json()["items"]
    assert hit["attachments"] == ["x.pdf"] and hit["has_attachment"] is True
    assert len(hit["sha256"]) == 64 and hit["decision"] == "clear"
    # tenant B's key never sees A's entries, whatever it asks
    other = get("/api/v1/archive/search", key_b, **{"from": "alice@acme.example"}).json()
    assert other["total"] == 0
    assert get("/api/v1/archive/search", key_b).json()["total"] == 2
    for params in ({"after": "x"}, {"limit": "0"}, {"decision": "maybe"}, {"page": "abc"}):
        bad = get("/api/v1/archive/search", key_a, **params)
        assert bad.status_code == 400 and "error" in bad.json(), params
    dl = get("/api/v1/archive/export", key_a, format="mbox", to="bob9@partner.example")
    assert dl.status_code == 200 and dl.content.count(b"From alice@acme.example ") == 1
    assert get("/api/v1/archive/export", key_sender).status_code == 403
    spec = c.get("/api/v1/openapi.json").json()
    assert "/api/v1/archive/search" in spec["paths"] and "/api/v1/archive/export" in spec["paths"]
    events = world.run(audit_rows, world.services)
    # a key without a label is named by its prefix
    assert {e.actor for e in events} == {"api-key:" + key_a[:8], "api-key:" + key_b[:8]}
