"""Retention in the running product: two sealed messages sent to ``sealmail serve``, a legal
hold placed through the portal's API on one, retention run out; ``sealmail archive sweep``
shreds the other (its link shows "expired"), the held one stays readable, verify is clean,
and the worker's scheduler has run the sweep job."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, make_message, send
from tests.helpers.smtp_sink import SmtpSink

DAY = 86400


def _api(product: Product, key: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"{product.portal_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def _status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_hold_sweep_and_expired_link(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.cli("tenant", "update", "Acme", "--archive-retention", "30d")
    product.start()
    user, password = tenant["smtp_username"], tenant["smtp_password"]
    send(product.smtp_port, make_message("[secure] Walrus merger terms", "Confidential."),
         user, password)  # fmt: skip
    send(product.smtp_port, make_message("[secure] Lunch menu", "Soup.", to="carol@r.test"),
         user, password, rcpt=["carol@r.test"])  # fmt: skip
    (walrus,) = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)
    (lunch,) = sink.wait_for(lambda m: "carol@r.test" in m.rcpt_tos)
    held_link = find_link(walrus.data, product.portal_url)
    gone_link = find_link(lunch.data, product.portal_url)

    body = {"kind": "search", "name": "Case 7", "criteria": {"subject": "walrus"}}
    hold = _api(product, tenant["api_key"], "/api/v1/archive/holds", body)
    assert hold["items"] == 1

    # time passes: both past their 30 days of archive retention (and portal retention)
    db = sqlite3.connect(product.root / "var" / "sealmail.db")
    deadline = time.monotonic() + 30  # the worker runs the sweep job when it starts
    while not db.execute(
        "SELECT runs FROM scheduled_jobs WHERE name = 'archive-sweep' AND runs > 0"
    ).fetchone():
        assert time.monotonic() < deadline, product.logs()[-2000:]
        time.sleep(0.2)
    with db:
        db.execute("UPDATE archive_entries SET retain_until = ?", (time.time() - 1,))
        db.execute("UPDATE messages SET received_at = received_at - ?", (100 * DAY,))
    jobs = dict(db.execute("SELECT name, runs FROM scheduled_jobs").fetchall())
    db.close()
    assert jobs["archive-sweep"] >= 1

    report = json.loads(product.cli("archive", "sweep", "--json").stdout)
    assert report["entries_shredded"] == 1 and report["entries_held"] == 1
    assert report["problems"] == []

    status, page = _status(gone_link)
    assert status == 410 and "This message has expired" in page
    status, page = _status(held_link)
    assert status == 200 and "Send me a code" in page  # still there, behind its code

    verify = product.cli("archive", "verify", "--json")
    assert json.loads(verify.stdout)["damaged"] == []
    listed = json.loads(product.cli("archive", "hold", "list", "--json").stdout)
    assert [h["name"] for h in listed] == ["Case 7"]
