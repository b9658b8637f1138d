"""A message's receipt: what was sent (its SHA-256 and size), when, by whom, to whom, and
what happened for each recipient, with the evidence entries that record it, signed with the
tenant's Ed25519 key. :func:`verify` checks a receipt offline with only the public key.

The signature covers the whole ``receipt`` object (canonical JSON); each evidence entry is
also checked against its own hash, so a receipt cannot be altered, and its entries are the
tenant's chain's own (``seq`` and hashes), which ``sealmail evidence verify`` walks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import IntegrityError, NotFound
from core.evidence import keys
from core.evidence.log import ACCEPTED, chain, digest_commitment, entry_hash, fields_of
from core.evidence.models import EvidenceCheckpoint, EvidenceEntry
from core.models import Message, MessageRecipient, Tenant, now
from core.services import Services

TYPE = "sealmail-receipt"


async def build(services: Services, message_id: str, tenant_id: str | None = None) -> dict:
    """The signed receipt of a message (of ``tenant_id`` when given: another tenant's
    message is not found)."""
    async with services.db.session() as s:
        msg = await s.get(Message, message_id)
        if msg is None or (tenant_id and msg.tenant_id != tenant_id):
            raise NotFound(f"message {message_id} not found")
        tenant_id = msg.tenant_id
    await chain(services, tenant_id, checkpoint=True)
    async with services.db.session() as s:
        msg = await s.get(Message, message_id)
        tenant = await s.get(Tenant, tenant_id)
        assert msg is not None and tenant is not None
        rcpts = (
            (await s.execute(select(MessageRecipient).where(MessageRecipient.message_id == msg.id)))
            .scalars()
            .all()
        )
        entries = (
            (
                await s.execute(
                    select(EvidenceEntry)
                    .where(
                        EvidenceEntry.tenant_id == tenant_id,
                        EvidenceEntry.message_id == msg.id,
                        EvidenceEntry.seq.is_not(None),
                    )
                    .order_by(EvidenceEntry.seq)
                )
            )
            .scalars()
            .all()
        )
        last = entries[-1].seq if entries else 0
        checkpoint = (
            await s.execute(
                select(EvidenceCheckpoint)
                .where(EvidenceCheckpoint.tenant_id == tenant_id, EvidenceCheckpoint.seq >= last)
                .order_by(EvidenceCheckpoint.seq)
                .limit(1)
            )
        ).scalar_one_or_none()
        evidence = [{**fields_of(e), "hash": e.hash} for e in entries]
        dispositions = {r.rcpt.strip().lower(): r.disposition for r in rcpts}
        # the envelope's recipients, and anyone else the log names (a forward's recipient)
        addresses = list(dict.fromkeys([*dispositions, *(e["recipient"] for e in evidence)]))
        addresses = [a for a in addresses if a]
        accepted: dict[str, Any] = next(
            (e["detail"] for e in evidence if e["kind"] == ACCEPTED), {}
        )
        sha256 = await _digest(services, s, msg, accepted)
        receipt: dict[str, Any] = {
            "type": TYPE,
            "version": 1,
            "issued_at": now(),
            "tenant_id": tenant_id,
            "tenant": tenant.display_name or tenant.name,
            "message_id": msg.id,
            "envelope_from": msg.mail_from,
            "received_at": msg.received_at,
            # of the original as accepted (the archive's and the export's digest)
            "sha256": sha256,
            "size": accepted.get("size", 0),
            "recipients": [
                {
                    "address": address,
                    "disposition": dispositions.get(address, ""),
                    "events": [
                        {"seq": e["seq"], "kind": e["kind"], "at": e["at"], "detail": e["detail"]}
                        for e in evidence
                        if e["recipient"] in ("", address) and e["kind"] != ACCEPTED
                    ],
                }
                for address in addresses
            ],
            "evidence": evidence,
            "checkpoint": None
            if checkpoint is None
            else {
                "seq": checkpoint.seq,
                "hash": checkpoint.hash,
                "at": checkpoint.at,
                "key_id": checkpoint.key_id,
                "signature": checkpoint.signature,
            },
        }
    async with services.db.write_gate.hold(), services.db.session() as s:
        key, private = await keys.signer(s, services.vault, tenant_id)  # made at first use
        await s.commit()
    return {
        "receipt": receipt,
        "algorithm": keys.ALGORITHM,
        "key_id": key.id,
        "public_key": key.public_key,
        "signature": keys.sign(private, receipt),
    }


async def _digest(
    services: Services, s: AsyncSession, msg: Message, accepted: dict[str, Any]
) -> str:
    """The stored original's SHA-256, read from its sealed stream and checked against the
    commitment the log holds ("" when the original is gone, e.g. past its retention)."""
    try:
        stream = await services.vault.stream(s, msg.tenant_id, msg.raw_object_id)
    except NotFound:
        return ""
    sha = hashlib.sha256()
    async for chunk in stream:
        sha.update(chunk)
    digest = sha.hexdigest()
    if accepted and accepted.get("digest") != digest_commitment(services, msg.tenant_id, digest):
        raise IntegrityError(
            f"the stored original of {msg.id} does not match what the evidence log recorded"
        )
    return digest


def load_public_keys(data: bytes) -> dict[str, str]:
    """``key id -> base64 public key`` from a public key file: the portal's
    ``/.well-known/sealmail/receipt-keys`` document, one key of it, or a PEM public key."""
    text = data.decode("utf-8", "replace").strip()
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        import base64

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        public = serialization.load_pem_public_key(data)
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError("the PEM file is not an Ed25519 public key")
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {keys.key_id_of(raw): base64.b64encode(raw).decode("ascii")}
    doc = json.loads(text)
    found = doc.get("keys", [doc]) if isinstance(doc, dict) else doc
    return {k["key_id"]: k["public_key"] for k in found if "key_id" in k and "public_key" in k}


def _problems(doc: Any, public_keys: dict[str, str]) -> Iterable[str]:
    if not isinstance(doc, dict) or not isinstance(doc.get("receipt"), dict):
        yield "this is not a sealmail receipt"
        return
    receipt = doc["receipt"]
    if receipt.get("type") != TYPE:
        yield "this is not a sealmail receipt"
        return
    key_id = doc.get("key_id", "")
    public = public_keys.get(key_id)
    if public is None:
        yield f"the public key file has no key {key_id!r} (the key that signed this receipt)"
        return
    if not keys.verify(public, receipt, str(doc.get("signature", ""))):
        yield "the signature does not match: the receipt was changed after it was signed"
        return
    prev_seq = 0
    for entry in receipt.get("evidence", []):
        fields = {k: entry.get(k) for k in fields_of(entry)}
        if entry_hash(fields) != entry.get("hash"):
            yield f"evidence entry {entry.get('seq')} does not match its hash"
            return
        if not isinstance(entry.get("seq"), int) or entry["seq"] <= prev_seq:
            yield f"evidence entry {entry.get('seq')} is out of order"
            return
        prev_seq = entry["seq"]
    cp = receipt.get("checkpoint")
    if cp:
        payload = {"type": "sealmail-evidence-checkpoint", "tenant_id": receipt["tenant_id"],
                   "seq": cp["seq"], "hash": cp["hash"], "at": cp["at"]}  # fmt: skip
        if not keys.verify(public_keys.get(cp.get("key_id"), ""), payload, cp.get("signature", "")):
            yield f"the checkpoint at entry {cp.get('seq')} does not carry a valid signature"


def signed_json(data: bytes) -> bytes:
    """The signed receipt in ``data``: the JSON file itself, or the one a receipt PDF
    carries (:mod:`core.evidence.paper`)."""
    if data.lstrip()[:5] == b"%PDF-":
        from core.evidence.paper import signed_of

        return signed_of(data)
    return data


def verify(data: bytes, public_keys: dict[str, str]) -> list[str]:
    """What is wrong with the receipt ``data`` (JSON, or a receipt PDF; empty: it is
    valid), offline."""
    try:
        data = signed_json(data)
    except ValueError as exc:
        return [f"this is not a sealmail receipt ({exc})"]
    try:
        doc = json.loads(data)
    except ValueError:
        return ["this is not a sealmail receipt (not JSON)"]
    return list(_problems(doc, public_keys))


async def public_keys_of(session: AsyncSession, tenant_id: str | None = None) -> dict:
    return {"keys": await keys.published(session, tenant_id)}
