"""The fuzz world: one SQLite database, one portal app and one signed-in recipient, reused
by every example of a property. A message goes in the way intake leaves it (sealed raw
object, ``messages`` row, recipients), through the real pipeline pass, and is read back
from the outbox, the archive and the portal."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from core.config.settings import Settings
from core.db import migrate
from core.ids import queue_id
from core.models import Message, MessageRecipient, OutboxItem
from core.policy import parse_policy
from core.policy.store import set_policy
from core.services import Services
from gateway.intake.committer import GroupCommitter
from gateway.pipeline.runner import _claim, _process
from portal.app import create_app
from tests.conftest import make_settings
from tests.portal.conftest import BASE, World

SENDER = "alice@acme.example"
RECIPIENT = "bob@partner.example"
# Every message ends in the portal (the recipient is external), after rules that read its
# text, its attachments and its headers, so the policy engine extracts every part.
POLICY = """
encrypt_external: true
dictionaries:
  legal: {words: [privileged, "attorney-client"], min_count: 2}
rules:
  - name: cards
    when: {detector: credit_card}
    action: encrypt
    method: portal
  - name: words
    when: {detector: "dictionary:legal"}
    action: encrypt
    method: portal
  - name: archives
    when: {attachment_type: zip}
    action: encrypt
    method: portal
  - name: subject
    when: {subject_contains: confidential}
    action: encrypt
    method: portal
  - name: pattern
    when: {text_matches: "(?i)invoice\\\\s+\\\\d+"}
    action: encrypt
    method: portal
"""
_LINK = re.compile(rb"https://portal\.test/m/([A-Za-z0-9_-]+)")


def examples(default: int) -> int:
    """Examples per property: ``SEALMAIL_FUZZ_EXAMPLES`` for the long run, else ``default``."""
    return int(os.environ.get("SEALMAIL_FUZZ_EXAMPLES", default))


@dataclasses.dataclass
class Outcome:
    message_id: str
    message: Message
    notification: email.message.EmailMessage
    archived: bool


class FuzzWorld(World):
    tenant_id: str = ""

    def __repr__(self) -> str:  # a failing example prints its arguments: keep this short
        return "FuzzWorld()"

    async def _submit(self, raw: bytes) -> str:
        """Store ``raw`` as intake does once DATA is complete; return the queue id."""
        services = self.services
        async with services.db.session() as s:
            writer = await services.vault.writer(s, self.tenant_id, kind="raw")
        await writer.write(raw)
        obj = await writer.close()
        qid = queue_id()
        message = Message(
            id=qid,
            tenant_id=self.tenant_id,
            mail_from=SENDER,
            client_addr="127.0.0.1",
            size=len(raw),
            state="received",
            disposition="",
            raw_object_id=obj.id,
        )
        await GroupCommitter(services).commit(
            obj, message, [MessageRecipient(message_id=qid, rcpt=RECIPIENT)]
        )
        return qid

    async def _through_pipeline(self, raw: bytes) -> Outcome:
        from archive.models import ArchiveEntry

        qid = await self._submit(raw)
        claimed = dict(await _claim(self.services, 1, "fuzz"))
        assert qid in claimed, "the message was not claimed"
        await _process(self.services, qid, claimed[qid])  # raises what the pass raises
        async with self.services.db.session() as s:
            message = await s.get(Message, qid)
            item = (
                await s.execute(
                    select(OutboxItem).where(
                        OutboxItem.message_id == qid, OutboxItem.kind == "notification"
                    )
                )
            ).scalar_one()
            note = await self.services.vault.read(s, self.tenant_id, item.object_id)
            archived = (
                await s.execute(select(ArchiveEntry.id).where(ArchiveEntry.message_id == qid))
            ).first() is not None
        assert message is not None
        parsed = email.message_from_bytes(note, policy=email.policy.default)
        return Outcome(qid, message, parsed, archived)  # type: ignore[arg-type]

    def through_pipeline(self, raw: bytes) -> Outcome:
        return self.run(self._through_pipeline, raw)


def _setup(world: FuzzWorld) -> None:
    world.tenant_id = world.tenant("Acme", "acme.example")

    async def install() -> None:
        async with world.services.db.session() as s:
            await set_policy(s, world.tenant_id, parse_policy(POLICY), "fuzz")
            await s.commit()

    world.run(install)
    first = world.through_pipeline(
        b"From: Alice <alice@acme.example>\r\nTo: bob@partner.example\r\n"
        b"Subject: hello\r\n\r\nfirst\r\n"
    )
    m = _LINK.search(first.notification.as_bytes())
    assert m, "no portal link in the notification"
    world.sign_in(m.group(1).decode())


def fuzz_dir() -> tempfile.TemporaryDirectory[str]:
    """Where a fuzz world keeps its database and objects: in memory when the machine has a
    tmpfs (every object and commit is fsync'd; thousands of examples would wait on the
    disk), else the usual temporary directory."""
    shm = Path("/dev/shm")
    return tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None, prefix="sealfuzz")


def open_settings(directory: Path) -> Settings:
    url = f"sqlite:///{directory}/sealmail.db"
    migrate(url)
    return make_settings(directory, url, portal_base_url="https://portal.test")


@pytest.fixture
def fuzz_settings() -> Iterator[Settings]:
    with fuzz_dir() as directory:
        yield open_settings(Path(directory))


@pytest.fixture
def fuzz_world(fuzz_settings: Settings) -> Iterator[FuzzWorld]:
    """One database, one app, the recipient signed in: for all the examples of a test."""
    services = Services.open(fuzz_settings)
    app = create_app(fuzz_settings, services)
    with TestClient(app, base_url=BASE) as client:
        world = FuzzWorld(client, services, fuzz_settings)
        _setup(world)
        yield world
        client.portal.call(services.close)
