"""What the reply and forward pages share: the original message as the signed-in recipient
may see it, its text quoted, the threading headers, the rate limit, and sending the new
message into the gateway's path (``conversations.submit``) with its event and audit row.
"""

from __future__ import annotations

import dataclasses
import email.utils
import html as html_lib
import re
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

import nh3
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from conversations import events, threads
from conversations.compose import Draft, chunks
from conversations.modes import parse_shown
from conversations.submit import submit
from core.accounts.domains import tenant_domains
from core.audit import audit
from core.mime_text import clean, clean_lines
from core.models import Message, PortalAccess, PortalSession, Tenant, now
from core.portal_message import PortalMessage
from portal import ratelimit
from portal.reader.access import load_message, recipient_session
from portal.state import PortalState, client_ip

MAX_QUOTED = 256 * 1024  # characters of the original kept below a reply or forward
MAX_HEADER_BLOCK = 256 * 1024  # bytes of the parent's raw header block read for References
PER_SESSION_HOUR = 30  # replies and forwards one session may send in an hour
PER_ADDRESS_HOUR = 60  # ... and one address, over all its sessions
SEPARATOR = "---------- Forwarded message ----------"


@dataclasses.dataclass
class Original:
    """The message being answered, loaded through the recipient's access checks."""

    current: PortalSession
    tenant: Tenant
    msg: Message
    pm: PortalMessage
    text: str  # its body as plain text (from the HTML when it has no text part), bounded


async def load_original(st: PortalState, s: AsyncSession, request: Request) -> Original:
    """The same checks as the message page: a recipient session, a live access for exactly
    this tenant and address, else the same 401/404/410."""
    current = await recipient_session(s, request)
    msg, pm = await load_message(st, s, current, request.path_params["message_id"])
    tenant = await s.get(Tenant, current.tenant_id)
    assert tenant is not None  # the session's tenant: a foreign key
    text = ""
    if pm.text_object_id:
        raw = await st.services.vault.read(s, current.tenant_id, pm.text_object_id)
        text = raw.decode("utf-8", "replace")
    elif pm.html_object_id:
        raw = await st.services.vault.read(s, current.tenant_id, pm.html_object_id)
        text = html_to_text(raw.decode("utf-8", "replace"))
    return Original(current, tenant, msg, pm, clean_lines(text[:MAX_QUOTED]))


def html_to_text(html: str) -> str:
    """A readable plain text of an HTML body: every tag dropped, block ends kept as lines."""
    marked = re.sub(r"(?i)<\s*(br|/p|/div|/tr|/h[1-6]|/li)\b[^>]*>", "\n", html[: MAX_QUOTED * 4])
    stripped = nh3.clean(marked, tags=set(), clean_content_tags={"script", "style"})
    text = html_lib.unescape(stripped)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.splitlines()))


def human_date(header: str) -> str:
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return clean(header)[:60]
    return when.strftime("%a, %d %b %Y at %H:%M %z").strip()


def quote(original: Original) -> str:
    """The original below a reply: ``On <date>, <sender> wrote:`` and ``> `` lines."""
    pm = original.pm
    who = clean(pm.sender) or original.msg.mail_from
    head = f"On {human_date(pm.date)}, {who} wrote:" if pm.date else f"{who} wrote:"
    lines = original.text.rstrip("\n").split("\n") if original.text else []
    return "\n".join([head, *(f"> {line}" if line else ">" for line in lines)])


def forwarded(original: Original) -> str:
    """The original below a forward, with the headers a person needs to place it."""
    pm = original.pm
    head = [SEPARATOR, f"From: {clean(pm.sender) or original.msg.mail_from}"]
    if pm.date:
        head.append(f"Date: {human_date(pm.date)}")
    head.append(f"Subject: {clean(pm.subject)}")
    if pm.to:
        head.append(f"To: {', '.join(clean(a) for a in pm.to)}")
    if pm.cc:
        head.append(f"Cc: {', '.join(clean(a) for a in pm.cc)}")
    return "\n".join(head) + "\n\n" + original.text


def prefixed(prefix: str, subject: str) -> str:
    """``Re: subject`` (or ``Fwd:``), without stacking ``Re: Re:``."""
    text = clean(subject).strip()
    if text.lower().startswith(prefix.lower()):
        return text
    return f"{prefix} {text}" if text else prefix


def shown(pairs: list[tuple[str, str]]) -> list[str]:
    return [email.utils.formataddr((name, address)) if name else address for name, address in pairs]


def sentence(pairs: list[tuple[str, str]]) -> str:
    """``Alice Smith <alice@acme.example>`` / ``... and 2 others: b@x, c@y``."""
    people = shown(pairs)
    if len(people) <= 1:
        return "".join(people)
    rest = len(people) - 1
    return f"{people[0]} and {rest} other{'s' if rest > 1 else ''}: {', '.join(people[1:])}"


async def threading_headers(
    st: PortalState, s: AsyncSession, original: Original
) -> tuple[str, str]:
    """``(In-Reply-To, References)`` of an answer: the parent's Message-ID, and the parent's
    References (read from its sealed original's header block) followed by it."""
    parent = threads.msgids(original.pm.message_id_header)
    if not parent:
        return "", ""
    refs: list[str] = []
    header_block = await _header_block(st, s, original)
    if header_block:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(header_block)
        refs = threads.msgids(str(headers.get("References", "") or ""))
        if not refs:
            refs = threads.msgids(str(headers.get("In-Reply-To", "") or ""))[:1]
    chain = [r for r in refs if r != parent[0]][-(threads.MAX_REFERENCES - 1) :] + [parent[0]]
    return f"<{parent[0]}>", " ".join(f"<{r}>" for r in chain)


async def _header_block(st: PortalState, s: AsyncSession, original: Original) -> bytes:
    stream = await st.services.vault.stream(s, original.msg.tenant_id, original.msg.raw_object_id)
    data = b""
    try:
        async for piece in stream:
            data += piece
            end = min(
                (i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0), default=-1
            )
            if end >= 0:
                return data[: end + 2]
            if len(data) > MAX_HEADER_BLOCK:
                return b""
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return data


def _buckets(current: PortalSession) -> list[tuple[str, int]]:
    return [
        (f"reader-send:s:{current.id_hash}", PER_SESSION_HOUR),
        (f"reader-send:a:{current.tenant_id}:{current.email}", PER_ADDRESS_HOUR),
    ]


async def rate_limited(s: AsyncSession, current: PortalSession) -> bool:
    return await ratelimit.exceeded(s, _buckets(current), ratelimit.HOUR)


async def author_address(original: Original) -> str:
    """The author as the From header shows them: their name as the original's To/Cc showed
    it, and the address they verified."""
    me = original.current.email
    for name, address in parse_shown([*original.pm.to, *original.pm.cc]):
        if address == me and name:
            return email.utils.formataddr((name, me))
    return me


async def msgid_domain(s: AsyncSession, tenant_id: str) -> str:
    domains = await tenant_domains(s, tenant_id)
    return domains[0] if domains else "sealmail.invalid"


async def send(
    st: PortalState,
    request: Request,
    original: Original,
    draft: Draft,
    recipients: list[str],
    origin: str,
) -> str:
    """Store the draft as a received message (the pipeline takes it from there), record the
    event on the parent and audit it; returns the new message's id."""
    current, msg = original.current, original.msg
    qid = await submit(
        st.services,
        msg.tenant_id,
        current.email,
        recipients,
        chunks(draft),
        origin=origin,
        parent_id=msg.id,
        thread_id=msg.thread_id or msg.id,
        client=client_ip(request),
    )
    kind = events.REPLIED if origin == "reply" else events.FORWARDED
    async with st.services.db.session() as s:
        events.record(
            s,
            msg.tenant_id,
            msg.id,
            kind,
            current.email,
            current.email,
            message=qid,
            recipients=len(recipients),
            attachments=len(draft.attachments),
        )
        if origin == "reply":
            await s.execute(
                update(PortalAccess)
                .where(
                    PortalAccess.message_id == msg.id,
                    PortalAccess.tenant_id == msg.tenant_id,
                    func.lower(PortalAccess.recipient) == current.email,
                )
                .values(replied_at=now())
            )
        await ratelimit.record(s, [b for b, _ in _buckets(current)], ratelimit.HOUR)
        await audit(
            s,
            msg.tenant_id,
            current.email,
            f"portal.{origin}.sent",
            msg.id,
            message=qid,
            recipients=len(recipients),
            attachments=len(draft.attachments),
        )
        await s.commit()
    return qid
