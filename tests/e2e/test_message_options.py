"""Per-message options end to end (issue 12), through ``sealmail serve``, SMTP and a sink:
the four option headers never reach the sink (only the loop stamp does), an invalid value
is logged and the message still sealed, ``X-Sealmail-Expires: 2h`` gives the recipient's
access an expiry two hours away (as ``sealmail message show --json`` says), and
``sealmail message revoke`` makes the notice's link stop opening the message."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, make_message, send
from tests.helpers.smtp_sink import Received, SmtpSink

pytestmark = pytest.mark.timeout(180)

OPTIONS = {
    "X-Sealmail-Expires": "2h",
    "X-Sealmail-Receipt": "yes",
    "X-Sealmail-Reply": "sender",
    "X-Sealmail-Forward": "internal",
}


def _internal_headers(m: Received) -> set[str]:
    """Every X-Sealmail-* header name in the mail, at any MIME level."""
    return {h.decode().lower() for h in re.findall(rb"(?im)^(x-sealmail-[a-z-]+):", m.data)}


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback test URL
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _queue_id(reply: str) -> str:
    found = re.search(r"queued as (\S+)", reply)
    assert found, reply
    return found.group(1)


def _show(product: Product, qid: str) -> dict:
    return json.loads(product.cli("message", "show", qid, "--json").stdout)


def _wait_for_event(product: Product, qid: str, kind: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = _show(product, qid)
        if any(e["kind"] == kind for r in data["recipients"] for e in r["events"]):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"no {kind!r} event for {qid}: {data}")
        time.sleep(0.2)


def test_options_are_applied_and_never_leave(product: Product, sink: SmtpSink) -> None:
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    login = (tenant["smtp_username"], tenant["smtp_password"])

    sealed = make_message("[secure] Loan papers", "the papers", to="bob@recipient.test")
    clear = make_message("Lunch", "at noon", to="carol@recipient.test")
    invalid = make_message("[secure] Other", "more", to="dave@recipient.test")
    for msg in (sealed, clear):
        for name, value in OPTIONS.items():
            msg[name] = value
    invalid["X-Sealmail-Reply"] = "everybody"
    invalid["X-Sealmail-Expires"] = "next week"
    sent_at = time.time()
    qid = _queue_id(send(product.smtp_port, sealed, *login))
    send(product.smtp_port, clear, *login)
    bad_qid = _queue_id(send(product.smtp_port, invalid, *login))

    got = sink.wait_for(lambda m: True, count=3)
    by_rcpt = {m.rcpt_tos[0]: m for m in got}
    assert set(by_rcpt) == {"bob@recipient.test", "carol@recipient.test", "dave@recipient.test"}
    for m in got:
        assert _internal_headers(m) == {"x-sealmail-processed"}, m.data[:800]
    assert b"at noon" in by_rcpt["carol@recipient.test"].data  # the clear copy
    assert b"the papers" not in by_rcpt["bob@recipient.test"].data  # a notice
    assert b"more" not in by_rcpt["dave@recipient.test"].data  # still sealed

    # the invalid values were logged, and ignored: the default lifetime and modes
    logs = product.logs()
    assert "X-Sealmail-Reply ignored" in logs and "X-Sealmail-Expires ignored" in logs
    bad = _show(product, bad_qid)
    assert bad["recipients"][0]["state"] == "live"
    assert bad["recipients"][0]["expires_at_epoch"] > time.time() + 86400
    assert bad["reply_mode"] == "all" and bad["receipt"] is False

    # X-Sealmail-Expires: 2h → bob's access ends two hours after it was processed
    data = _wait_for_event(product, qid, "notified")
    (bob,) = data["recipients"]
    assert bob["recipient"] == "bob@recipient.test" and bob["state"] == "live"
    assert sent_at + 7200 - 5 <= bob["expires_at_epoch"] <= time.time() + 7200
    assert (data["receipt"], data["reply_mode"], data["forward_mode"]) == (
        True,
        "sender",
        "internal",
    )
    shown = product.cli("message", "show", qid).stdout
    assert "bob@recipient.test: can read it until" in shown
    assert "bob@recipient.test was notified." in shown

    # revoke: the notice's link no longer opens the message
    link = find_link(by_rcpt["bob@recipient.test"].data, product.portal_url)
    assert _status(link) == 200
    r = product.cli("message", "revoke", qid, "--recipient", "bob@recipient.test")
    assert "bob@recipient.test can no longer open message" in r.stdout
    assert _status(link) in (404, 410)
    after = _show(product, qid)["recipients"][0]
    assert after["state"] == "revoked" and after["revoked_by"] == "cli"
    assert [e["kind"] for e in after["events"]] == ["notified", "revoked"]

    # one-line failures
    for args in (
        ("message", "show", "no-such-message"),
        ("message", "revoke", qid, "--recipient", "nobody@recipient.test"),
    ):
        failed = product.cli(*args, check=False)
        assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
