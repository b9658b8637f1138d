"""``/compose``: a signed-in sender writes a secure message in the browser (issue 12, item 5).

The message enters the gateway's path where SMTP mail does (:func:`conversations.submit.submit`,
origin ``compose``): policy, sealing, archive and evidence run on it like on any message. It
carries ``X-Sealmail-Encrypt: yes`` and the options the sender chose as ``X-Sealmail-*``
headers, which the pipeline reads and removes before anything leaves. Bcc recipients are
envelope recipients only: no header ever names them.

The upload is bounded before and while it is read: a declared ``Content-Length`` over the
gateway's message size (plus the form around it) is refused at once, and a body that grows
past it while streaming is cut off; files are spooled to disk by Starlette's parser and the
size of the message they make is checked before anything is stored.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from conversations import guards, options
from conversations.compose import Draft, Upload, chunks
from conversations.submit import submit
from core.audit import audit
from portal.admin.context import page_context
from portal.admin.doors import SENDER_DOOR, Admin, current_user
from portal.security import check_session_token, same_origin_request
from portal.sent.compose_form import MAX_TEXT, ComposeForm, option_headers, read
from portal.state import PortalState, client_ip, portal
from portal.uploads import Posted, TooLarge, TooManyFiles, encoded_size, read_posted

MAX_FILES = 100
MAX_FIELDS = 20
NOTICE = "composed"


def _size_words(n: int) -> str:
    mib = n / (1024 * 1024)
    return f"{mib:.0f} MB" if mib >= 10 else f"{mib:.1f} MB" if mib >= 1 else f"{n // 1024} KB"


def _too_large(st: PortalState) -> Response:
    limit = _size_words(st.settings.smtp_max_message_size)
    return st.pages.error(
        413,
        title="This message is too large to send",
        text=(
            f"A secure message can be at most {limit}, attachments included, and this one is "
            "larger. Go back, remove an attachment or two (you will need to choose the other "
            "files again), and send it once more, or share the large files another way."
        ),
        retry_url="/compose",
    )


async def _signed_in(st: PortalState, request: Request) -> Admin | None:
    async with st.services.db.session() as s:
        return await current_user(s, request, SENDER_DOOR)


def _expiry_label(st: PortalState) -> str:
    seconds = st.settings.portal_link_lifetime
    return f"{seconds / 86400:.0f} days" if seconds >= 86400 else f"{seconds / 3600:.0f} hours"


def _render(
    st: PortalState, user: Admin, form: ComposeForm, *, files_dropped: int = 0, status: int = 200
) -> Response:
    ctx = page_context(
        user,
        form=form,
        files_dropped=files_dropped,
        passphrase_dropped=bool(form.passphrase),
        sender=user.user.email,
        usual_expiry=_expiry_label(st),
        max_size=_size_words(st.settings.smtp_max_message_size),
        max_recipients=st.settings.smtp_max_recipients,
        hide_subject=bool(user.tenant.hide_subject),
        admin_link=user.session.kind == "admin",
    )
    return st.pages.render("sent/compose.html", ctx, status=status)


async def compose_form(request: Request) -> Response:
    st = portal(request)
    user = await _signed_in(st, request)
    if user is None:
        return RedirectResponse(SENDER_DOOR.login_path, status_code=303)
    return _render(st, user, ComposeForm.blank(user.tenant))


def message_size(text: str, subject: str, uploads: list[Upload]) -> int:
    """What the message will weigh in the store and on the wire: base64 for files,
    quoted-printable at worst three times the text, headers."""
    files = sum(encoded_size(u.size) + 512 for u in uploads)
    return files + 3 * len(text.encode("utf-8", "replace")) + 4 * len(subject) + 8 * 1024


async def send_checked(
    st: PortalState,
    tenant_id: str,
    address: str,
    checked: ComposeForm,
    uploads: list[Upload],
    client: str,
) -> str:
    """A checked compose form (the page's or the API's) written as MIME and submitted
    through intake's path; returns the queue id. A passphrase is registered first and only
    its reference travels in the message (:mod:`conversations.guards`)."""
    headers = option_headers(checked)
    if checked.passphrase:
        async with st.services.db.session() as s:
            ref = await guards.register(
                s,
                st.services.vault,
                tenant_id,
                address,
                checked.passphrase,
                checked.passphrase_hint,
            )
            await s.commit()
        headers[options.PASSPHRASE_REF] = ref
    draft = Draft(
        from_addr=address,
        to=checked.addresses["to"],
        cc=checked.addresses["cc"],
        subject=checked.subject,
        text=checked.text,
        attachments=uploads,
        headers=headers,
        msgid_domain=address.rpartition("@")[2] or "sealmail.invalid",
    )
    return await submit(
        st.services,
        tenant_id,
        address,
        checked.recipients,
        chunks(draft),
        origin="compose",
        client=client,
    )


async def compose_send(request: Request) -> Response:
    st = portal(request)
    user = await _signed_in(st, request)
    if user is None:
        return RedirectResponse(SENDER_DOOR.login_path, status_code=303)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    try:
        posted = await read_posted(
            request,
            st.settings.smtp_max_message_size,
            max_files=MAX_FILES,
            max_fields=MAX_FIELDS,
            max_text=MAX_TEXT,
        )
    except TooLarge:
        return _too_large(st)
    except TooManyFiles:
        return st.pages.error(
            413,
            title="Too many attachments",
            text=f"A secure message can carry at most {MAX_FILES} files. Put them in a zip "
            "archive, or send them in several messages.",
            retry_url="/compose",
        )
    if posted is None:  # a malformed body is the client's error
        raise HTTPException(400)
    try:
        csrf = posted.form.get("csrf")
        if not isinstance(csrf, str) or not check_session_token(user.session.csrf_token, csrf):
            raise HTTPException(403)
        return await _send(request, st, user, posted)
    finally:
        await posted.close()


async def _send(request: Request, st: PortalState, user: Admin, posted: Posted) -> Response:
    checked = read(posted.form, user.tenant, st.settings.smtp_max_recipients)
    uploads = posted.uploads
    status = 422
    if not checked.errors and message_size(checked.text, checked.subject, uploads) > (
        st.settings.smtp_max_message_size
    ):
        total = sum(u.size or 0 for u in uploads)
        checked.errors["attachments"] = (
            f"Your attachments come to {_size_words(total)}; with the encoding mail needs, the "
            f"message would be over the limit of {_size_words(st.settings.smtp_max_message_size)}."
            " Leave out some files and choose the others again."
        )
        status = 413
    if not checked.text.strip() and not uploads and not checked.errors:
        checked.errors["text"] = "Write a message or attach a file."
    if checked.errors:
        return _render(st, user, checked, files_dropped=len(uploads), status=status)

    address = user.user.email.strip().lower()
    qid = await send_checked(st, user.tenant.id, address, checked, uploads, client_ip(request))
    async with st.services.db.session() as s:
        await audit(
            s,
            user.tenant.id,
            user.actor,
            "sent.composed",
            qid,
            to=len(checked.addresses["to"]),
            cc=len(checked.addresses["cc"]),
            bcc=len(checked.addresses["bcc"]),
            attachments=len(uploads),
        )
        await s.commit()
    return RedirectResponse(f"/sent/{qid}?notice={NOTICE}", status_code=303)
