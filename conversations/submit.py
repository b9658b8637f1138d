"""A message written in the portal enters the gateway's path exactly where SMTP mail does:
sealed into the store as it is produced, then one ``messages`` row in state ``received``
with its envelope recipients, committed under the write gate. The pipeline (policy,
sealing, archive, evidence) then runs on it like on any message; nothing about it is special
afterwards except its ``origin`` and its place in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.utils import formatdate

from core.ids import queue_id
from core.models import Message, MessageRecipient
from core.services import Services

ORIGINS = ("reply", "forward", "compose")


def _trace(qid: str, client: str) -> bytes:
    return (
        f"Received: from sealmail portal ([{client}])\r\n"
        f"\tby sealmail with HTTPS id {qid};\r\n\t{formatdate(usegmt=True)}\r\n"
    ).encode("ascii", "replace")


async def submit(
    services: Services,
    tenant_id: str,
    mail_from: str,
    recipients: list[str],
    pieces: Iterator[bytes],
    *,
    origin: str,
    parent_id: str = "",
    thread_id: str = "",
    client: str = "",
) -> str:
    """Store the message ``pieces`` (a blocking iterator: it reads spooled upload files, so
    each step runs in a thread) for ``recipients`` and return its queue id."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}")
    if not recipients:
        raise ValueError("a message needs at least one recipient")
    qid = queue_id()
    size = 0
    async with services.db.session() as s:
        writer = await services.vault.writer(s, tenant_id, kind="raw")
    try:
        await writer.write(_trace(qid, client or "unknown"))
        while True:
            piece = await asyncio.to_thread(next, pieces, None)
            if piece is None:
                break
            size += len(piece)
            await writer.write(piece)
        obj = await writer.close()
    except BaseException:
        await writer.abort()
        raise
    try:
        async with services.db.write_gate.hold(), services.db.session() as s:
            s.add(obj)
            s.add(
                Message(
                    id=qid,
                    tenant_id=tenant_id,
                    mail_from=mail_from,
                    client_addr=(client or "")[:64],
                    size=size,
                    state="received",
                    raw_object_id=obj.id,
                    origin=origin,
                    parent_id=parent_id,
                    thread_id=thread_id,
                )
            )
            await s.flush()
            s.add_all([MessageRecipient(message_id=qid, rcpt=r) for r in recipients])
            await s.commit()
    except BaseException:
        await asyncio.to_thread(services.store.delete, obj.storage_name)
        raise
    return qid
