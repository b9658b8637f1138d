"""The large path (issue 15, flat memory): a message above the threshold is decided from
its streaming skeleton and sealed for the portal from the stream; what the portal shows,
the archive records and the policy decides are the same as on the whole-message path."""

from __future__ import annotations

import base64
import hashlib
import os
import re

import pytest
from sqlalchemy import select

from archive.index import Summary
from archive.models import ArchiveEntry
from core.mime_stream import scan
from core.models import Message
from core.policy import Limits, extract_facts, parse_policy
from core.policy.extract import extract_facts_skeleton
from core.policy.store import set_policy
from core.portal_message import PortalMessage
from core.quarantine import list_held
from gateway.delivery import drain
from gateway.pipeline import runner
from gateway.worker import run_once
from tests.gateway.conftest import asend, whole_reads


def _message(tag: str, blob: bytes) -> bytes:
    b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    return (
        b"From: Alice <alice@acme.example>\r\nTo: bob@partner.example\r\n"
        b"Subject: [secure] figures " + tag.encode() + b"\r\n"
        b"Message-ID: <" + tag.encode() + b"@acme.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="OUT"\r\n\r\npreamble\r\n--OUT\r\n'
        b'Content-Type: multipart/alternative; boundary="ALT"\r\n\r\n--ALT\r\n'
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Caf=E9 numbers =\r\nfollow\r\n--ALT\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Caf\xc3\xa9</p>\r\n--ALT--\r\n"
        b"--OUT\r\n"
        b'Content-Type: application/pdf; name="r.pdf"\r\n'
        b'Content-Disposition: attachment; filename="r.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--OUT\r\n"
        b"Content-Type: image/png\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\niVBORw0KGgo=\r\n--OUT--\r\nepilogue\r\n"
    )


async def _portal_view(services, tenant, tag: str):  # noqa: ANN001, ANN202
    async with services.db.session() as s:
        m = (
            await s.execute(select(Message).where(Message.mail_from == f"{tag}@acme.example"))
        ).scalar_one()
        assert m.state == "processed" and m.disposition == "portal"
        meta = PortalMessage.from_json(await services.vault.read(s, tenant.id, m.meta_object_id))
        text = await services.vault.read(s, tenant.id, meta.text_object_id)
        html = await services.vault.read(s, tenant.id, meta.html_object_id)
        parts = [
            (a.filename, a.content_type, a.size, a.sha256, a.inline, a.content_id)
            for a in meta.attachments
        ]
        blobs = [await services.vault.read(s, tenant.id, a.object_id) for a in meta.attachments]
        entry = (
            await s.execute(select(ArchiveEntry).where(ArchiveEntry.message_id == m.id))
        ).scalar_one()
        stored = await services.vault.read(s, tenant.id, m.raw_object_id)
        summary = Summary.from_json(await services.vault.read(s, tenant.id, entry.meta_object_id))
    # the archive's digest (streamed on the large path) is the stored original's
    assert entry.size == summary.size == len(stored)
    assert summary.sha256 == hashlib.sha256(stored).hexdigest()
    assert summary.subject.startswith("[secure]") and entry.has_attachment
    shown = (meta.subject, meta.sender, meta.to, meta.message_id_header)
    return shown, text, html, parts, blobs


async def test_large_message_sealed_as_the_whole_path_seals_it(
    gateway, tenant, gw_services, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = os.urandom(300_000)
    for tag, large in (("whole", 1 << 40), ("large", 1000)):
        monkeypatch.setattr(runner, "LARGE", large)
        raw = _message("same", blob)
        result = await asend(
            gateway, raw, f"{tag}@acme.example", ["bob@partner.example"],
            login=(tenant.username, tenant.password),
        )  # fmt: skip
        assert result == {}
        assert await run_once(gw_services) >= 1
    whole = await _portal_view(gw_services, tenant, "whole")
    large = await _portal_view(gw_services, tenant, "large")
    assert whole == large
    assert large[1].decode() == "Café numbers follow\r\n" or large[1].startswith(b"Caf\xc3\xa9")
    assert large[4][0] == blob  # the attachment, decoded from the stream
    assert [p[0] for p in large[3]] == ["r.pdf", "attachment-4"]


async def test_large_clear_message_is_relayed_from_the_stream_as_the_whole_path_relays_it(
    gateway, tenant, gw_services, sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clear copy written from the stored stream and delivered as a stream reaches
    the next hop with the same bytes as the copy read, written and sent whole."""
    raw = _message("clear", os.urandom(50_000)).replace(b"[secure] ", b"")
    for n, threshold in enumerate((1 << 40, 1000), 1):
        monkeypatch.setattr(runner, "LARGE", threshold)
        monkeypatch.setattr(drain, "STREAM_ABOVE", threshold)
        result = await asend(
            gateway, raw, "alice@acme.example", ["bob@partner.example"],
            login=(tenant.username, tenant.password),
        )  # fmt: skip
        assert result == {}
        assert await run_once(gw_services) >= 1
        await sink.wait_for(n)
    whole, streamed = sink.messages
    # the same bytes but for intake's own trace field (its queue id and time)
    trace = re.compile(rb"Received: from client\.test[^\r]*\r\n(?:\t[^\r]*\r\n)*")
    assert trace.sub(b"", streamed.content) == trace.sub(b"", whole.content)
    assert raw.split(b"\r\n\r\n", 1)[1] in streamed.content  # the body as it came
    assert streamed.content.count(b"X-Sealmail-Processed:") == 1  # the loop stamp


def test_skeleton_facts_equal_whole_facts_for_a_small_message() -> None:
    raw = _message("facts", b"%PDF-1.4 hello")
    whole = extract_facts(raw, Limits(max_seconds=60))
    skel = extract_facts_skeleton(scan([raw]), Limits(max_seconds=60))
    assert skel == whole


def test_skeleton_facts_judge_a_large_part_by_its_prefix() -> None:
    big = b"IBAN GB82 WEST 1234 5698 7654 32\n" + b"x" * (3 * 1024 * 1024)
    raw = _message("big", big)
    facts = extract_facts_skeleton(scan([raw], prefix_limit=2 * 1024 * 1024))
    (pdf,) = [a for a in facts.attachments if a.name == "r.pdf"]
    assert pdf.size > 3 * 1024 * 1024  # the real size, not the prefix's
    assert any(h.startswith("part_prefix (r.pdf)") for h in facts.limits_hit)
    assert "GB82 WEST" in facts.attachment_text


HOLD_AND_REJECT = """
rules:
  - name: review
    when: {recipient: held@*}
    action: hold
  - name: never
    when: {recipient: refused@*}
    action: reject
"""


async def test_large_message_held_and_refused_without_reading_it_whole(
    gateway, tenant, gw_services, sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gw_services.db.session() as s:
        await set_policy(s, tenant.id, parse_policy(HOLD_AND_REJECT), "test")
        await s.commit()
    monkeypatch.setattr(runner, "LARGE", 1000)
    read_whole = whole_reads(gw_services, monkeypatch)
    raw = _message("review", os.urandom(50_000))
    result = await asend(
        gateway, raw, "alice@acme.example", ["held@partner.example", "refused@partner.example"],
        login=(tenant.username, tenant.password),
    )  # fmt: skip
    assert result == {}
    assert await run_once(gw_services) >= 1
    async with gw_services.db.session() as s:
        m = (await s.execute(select(Message))).scalar_one()
        held = await list_held(s, tenant.id)
    assert m.state == "processed" and m.raw_object_id not in read_whole
    assert [(h.message_id, h.rule) for h, _ in held] == [(m.id, "review")]
    (bounce,) = await sink.wait_for(1)
    assert bounce.rcpt_tos == ["alice@acme.example"] and b"never" in bounce.content
    assert b"Message-ID: <review@acme.example>" in bounce.content  # its header block quoted
