"""What opening one sealed message needs beyond signing in (issue 16): the sender-set
passphrase and step-up (a passkey, or that passphrase), kept in :class:`MessageGuard`.

A passphrase is registered before its message exists (``/compose``, the API, the Outlook
add-in): :func:`register` keeps its Argon2 hash and hint under a reference ``pp_...`` that
travels in the message's ``X-Sealmail-Passphrase-Ref`` header (never the passphrase: a
header stays in the sender's Sent Items). The pipeline binds the reference to the message
(:func:`protect`) when it seals it for the portal; only the sender who registered it, of the
same tenant, within a week, can bind it. The passphrase is also sealed in the vault while a
PDF may still have to be encrypted with it (:func:`sealed_passphrase`), and that copy is
destroyed when the message no longer needs it (:func:`forget_sealed`).

In the portal a session satisfies a guard when the passphrase was given in it
(``PortalSession.unlocked``) or, for step-up without a passphrase, when it was opened or
confirmed with a passkey (``PortalSession.factor``); :func:`missing` says what is left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import MessageGuard
from core.hashing import hash_password, verify_password
from core.ids import new_id
from core.models import PortalSession, SealedObject, now
from core.storage.vault import Vault

log = logging.getLogger("sealmail.conversations")
PENDING_PREFIX = "pp_"
PENDING_LIFETIME = 7 * 86400.0  # a registered passphrase waits a week for its message (a hold)
MIN_LENGTH = 8
MAX_LENGTH = 200
MAX_HINT = 200
_MAX_UNLOCKED = 50  # messages remembered as unlocked per session


def passphrase_problem(passphrase: str, *, recipients: Sequence[str] = ()) -> str | None:
    """Why a passphrase cannot be used (a sentence for the sender), or None."""
    if len(passphrase) < MIN_LENGTH:
        return f"Choose a passphrase of at least {MIN_LENGTH} characters."
    if len(passphrase) > MAX_LENGTH:
        return f"A passphrase can be at most {MAX_LENGTH} characters long."
    if passphrase.strip() != passphrase or not passphrase.isprintable():
        return "A passphrase cannot start or end with spaces or hold control characters."
    lowered = passphrase.lower()
    if any(lowered == r.strip().lower() or lowered == r.split("@")[0].lower() for r in recipients):
        return "The passphrase cannot be a recipient's address or name."
    return None


def hint_problem(hint: str, passphrase: str) -> str | None:
    if len(hint) > MAX_HINT:
        return f"A hint can be at most {MAX_HINT} characters long."
    if hint and passphrase and passphrase.lower() in hint.lower():
        return "The hint cannot contain the passphrase."
    return None


async def register(
    session: AsyncSession,
    vault: Vault,
    tenant_id: str,
    sender: str,
    passphrase: str,
    hint: str = "",
) -> str:
    """Keep a passphrase for a message still to come; returns its reference for the
    ``X-Sealmail-Passphrase-Ref`` header. The caller has checked :func:`passphrase_problem`
    and commits. Registrations older than a week that no message claimed are dropped."""
    await _drop_stale(session, vault, tenant_id)
    ref = new_id(PENDING_PREFIX, 12)
    sealed = await vault.seal(session, tenant_id, passphrase.encode(), kind="passphrase")
    hashed = await asyncio.to_thread(hash_password, passphrase)
    session.add(
        MessageGuard(
            message_id=ref,
            tenant_id=tenant_id,
            step_up=False,
            step_up_reason="",
            passphrase_hash=hashed,
            passphrase_hint=hint.strip(),
            sender=sender.strip().lower(),
            passphrase_object_id=sealed.id,
            created_at=now(),
        )
    )
    return ref


async def _drop_stale(session: AsyncSession, vault: Vault, tenant_id: str) -> None:
    rows = (
        (
            await session.execute(
                select(MessageGuard).where(
                    MessageGuard.tenant_id == tenant_id,
                    MessageGuard.message_id.startswith(PENDING_PREFIX),
                    MessageGuard.created_at < now() - PENDING_LIFETIME,
                )
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        await forget_sealed(session, vault, row)
        await session.delete(row)


@dataclasses.dataclass(frozen=True)
class Protection:
    """What :func:`protect` left on a message."""

    guard: MessageGuard
    warning: str = ""  # for the pipeline's log: a reference that could not be bound


async def protect(
    session: AsyncSession,
    tenant_id: str,
    message_id: str,
    mail_from: str,
    *,
    passphrase_ref: str | None,
    step_up_reason: str,
) -> Protection | None:
    """Bind a registered passphrase (``passphrase_ref``) and record step-up for a message
    being sealed for the portal (the caller commits). A reference that cannot be bound
    (unknown, another sender's or tenant's, expired) fails safe: the message then needs a
    passkey, since its sender asked for more protection. None when nothing is asked."""
    guard = await session.get(MessageGuard, message_id)
    warning = ""
    if passphrase_ref:
        pending = await session.get(MessageGuard, passphrase_ref)
        usable = (
            pending is not None
            and passphrase_ref.startswith(PENDING_PREFIX)
            and pending.tenant_id == tenant_id
            and pending.sender == mail_from.strip().lower()
            and pending.created_at >= now() - PENDING_LIFETIME
        )
        if usable and pending is not None:
            if guard is None:
                guard = _new_guard(tenant_id, message_id, mail_from)
                session.add(guard)
            guard.passphrase_hash = pending.passphrase_hash
            guard.passphrase_hint = pending.passphrase_hint
            guard.passphrase_object_id = pending.passphrase_object_id
            await session.delete(pending)
        elif guard is None or not guard.passphrase_hash:
            warning = f"passphrase reference {passphrase_ref[:40]!r} not found for this sender"
            step_up_reason = step_up_reason or (
                "the sender set a passphrase that could not be attached to the message"
            )
    if step_up_reason:
        if guard is None:
            guard = _new_guard(tenant_id, message_id, mail_from)
            session.add(guard)
        if not guard.step_up:
            guard.step_up = True
            guard.step_up_reason = step_up_reason[:300]
    if guard is None:
        return None
    return Protection(guard, warning=warning)


def _new_guard(tenant_id: str, message_id: str, mail_from: str) -> MessageGuard:
    return MessageGuard(
        message_id=message_id,
        tenant_id=tenant_id,
        step_up=False,
        step_up_reason="",
        passphrase_hash="",
        passphrase_hint="",
        sender=mail_from.strip().lower(),
        passphrase_object_id="",
        created_at=now(),
    )


async def guard_of(session: AsyncSession, tenant_id: str, message_id: str) -> MessageGuard | None:
    if message_id.startswith(PENDING_PREFIX):
        return None
    guard = await session.get(MessageGuard, message_id)
    if guard is None:  # added by this transaction and not flushed (the pipeline's pass)
        guard = next(
            (g for g in session.new if isinstance(g, MessageGuard) and g.message_id == message_id),
            None,
        )
    return guard if guard is not None and guard.tenant_id == tenant_id else None


async def guards_of(
    session: AsyncSession, tenant_id: str, message_ids: list[str]
) -> dict[str, MessageGuard]:
    if not message_ids:
        return {}
    rows = await session.execute(
        select(MessageGuard).where(
            MessageGuard.tenant_id == tenant_id, MessageGuard.message_id.in_(message_ids)
        )
    )
    return {g.message_id: g for g in rows.scalars().all()}


async def sealed_passphrase(session: AsyncSession, vault: Vault, guard: MessageGuard) -> str | None:
    """The passphrase in clear while its sealed copy is kept (to encrypt a PDF), else None."""
    if not guard.passphrase_object_id:
        return None
    obj = await session.get(SealedObject, guard.passphrase_object_id)
    if obj is None or obj.destroyed_at is not None:
        return None
    data = await vault.read(session, guard.tenant_id, guard.passphrase_object_id)
    return data.decode()


async def forget_sealed(session: AsyncSession, vault: Vault, guard: MessageGuard) -> None:
    """Destroy the sealed copy of the passphrase (its data key, written with the caller's
    commit; the ciphertext deleted now): only the hash is left. Nothing is written before
    the caller flushes, so the pipeline's handlers may call it outside the write gate."""
    object_id = guard.passphrase_object_id
    if not object_id:
        return
    obj = await session.get(SealedObject, object_id)
    guard.passphrase_object_id = ""
    if obj is None:
        return
    obj.wrapped_key = None
    obj.destroyed_at = now()
    try:
        await asyncio.to_thread(vault.store.delete, obj.storage_name)
    except Exception as exc:  # noqa: BLE001 - the key goes: the ciphertext is unreadable
        log.info("sealed passphrase %s: key destroyed, ciphertext left: %s", object_id, exc)


# --- the portal's side ------------------------------------------------------------------------


def unlocked_ids(current: PortalSession) -> list[str]:
    return [m for m in (current.unlocked or "").split(",") if m]


def missing(guard: MessageGuard | None, current: PortalSession) -> set[str]:
    """What this session still needs to open the guarded message: ``passphrase`` and/or
    ``passkey`` (step-up; a passphrase given satisfies it too). Empty: it may open it."""
    if guard is None:
        return set()
    given = guard.message_id in unlocked_ids(current)
    needs: set[str] = set()
    if guard.passphrase_hash and not given:
        needs.add("passphrase")
    if guard.step_up and not given and current.factor != "passkey":
        needs.add("passkey")
    return needs


async def try_passphrase(guard: MessageGuard, passphrase: str) -> bool:
    if not guard.passphrase_hash or not passphrase or len(passphrase) > MAX_LENGTH:
        return False
    return await asyncio.to_thread(verify_password, guard.passphrase_hash, passphrase)


def mark_unlocked(current: PortalSession, message_id: str) -> None:
    """Remember in the session that the passphrase of ``message_id`` was given."""
    ids = [m for m in unlocked_ids(current) if m != message_id]
    ids.append(message_id)
    current.unlocked = ",".join(ids[-_MAX_UNLOCKED:])


async def drop_for_message(session: AsyncSession, message_ids: list[str]) -> None:
    """Remove the guards of messages that are gone (the caller commits)."""
    if message_ids:
        await session.execute(delete(MessageGuard).where(MessageGuard.message_id.in_(message_ids)))
