"""``/admin/keys``: the tenant's directory of recipients' OpenPGP keys and S/MIME
certificates, in the browser. Admins import (paste or upload) and remove; compliance
officers may look. The directory itself is :mod:`core.recipient_keys`, the same one the CLI
and ``/api/v1/keys`` use; a refused key shows the directory's one-line reason."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import recipient_keys
from core.errors import NotFound, PermanentError
from core.models import RecipientKey
from portal.admin.context import page_context
from portal.admin.doors import Admin, current_admin
from portal.forms import field, read_form
from portal.security import check_session_token, same_origin_request
from portal.state import portal

MAX_KEY = recipient_keys.MAX_KEY_BYTES
MAX_BODY = 2 * MAX_KEY + 64 * 1024  # a pasted key and a file, with the form around them
_DONE = {"imported", "removed"}


def _page(request: Request, admin: Admin, *, status: int = 200, **extra: Any) -> Response:
    ctx = page_context(admin, may_manage=admin.may("keys"), **extra)
    return portal(request).pages.render("admin/keys.html", ctx, status=status)


async def _signed_in(request: Request) -> Admin | Response:
    async with portal(request).services.db.session() as s:
        admin = await current_admin(s, request)
    if admin is None:
        return RedirectResponse("/admin/login", status_code=303)
    return admin


async def keys_page(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            return RedirectResponse("/admin/login", status_code=303)
        rows = await recipient_keys.list_keys(s, admin.tenant.id)
    done = request.query_params.get("done", "")
    count = request.query_params.get("n", "")
    notice = done if done in _DONE else ""
    return _page(
        request,
        admin,
        keys=rows,
        notice=notice,
        count=int(count) if count.isdigit() and len(count) < 5 else 0,
        error="",
    )


async def _multipart(request: Request, admin: Admin) -> FormData:
    """The import form: same origin, not too large, one file at most, CSRF token checked."""
    st = portal(request)
    if not same_origin_request(request, st.origins):
        raise HTTPException(403)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise HTTPException(413)
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=MAX_KEY + 1)
    except Exception:  # noqa: BLE001 - any malformed body is the client's error
        raise HTTPException(400) from None
    csrf = form.get("csrf")
    if not isinstance(csrf, str) or not check_session_token(admin.session.csrf_token, csrf):
        await form.close()
        raise HTTPException(403)
    return form


async def _key_data(form: FormData) -> bytes:
    """The pasted text, or else the uploaded file; over 1 MiB is left to the directory to
    refuse with its own message."""
    pasted = form.get("armored")
    if isinstance(pasted, str) and pasted.strip():
        return pasted.encode("utf-8", "replace")
    upload = form.get("file")
    if isinstance(upload, UploadFile):
        return await upload.read(MAX_KEY + 1)
    return b""


async def import_keys(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await _multipart(request, admin)
        try:
            if not admin.may("keys"):
                raise HTTPException(403)
            data = await _key_data(form)
        finally:
            await form.close()
        try:
            rows = await recipient_keys.import_keys(
                s, admin.tenant.id, data, source="import", actor=admin.actor
            )
        except PermanentError as exc:
            reason = " ".join(str(exc).split())[:300]
        else:
            count = len(rows)
            await s.commit()
            return RedirectResponse(f"/admin/keys?done=imported&n={count}", status_code=303)
    # refused: nothing was written (this session is gone); show the page with the reason
    async with st.services.db.session() as s:
        listed = await recipient_keys.list_keys(s, admin.tenant.id)
    return _page(request, admin, keys=listed, notice="", count=0, error=reason, status=422)


async def _own_key(request: Request, admin: Admin) -> RecipientKey:
    key_id = request.path_params["key_id"][:40]
    async with portal(request).services.db.session() as s:
        key = await s.get(RecipientKey, key_id)
    if key is None or key.tenant_id != admin.tenant.id:
        raise HTTPException(404)
    return key


async def confirm_remove(request: Request) -> Response:
    admin = await _signed_in(request)
    if isinstance(admin, Response):
        return admin
    if not admin.may("keys"):
        raise HTTPException(403)
    key = await _own_key(request, admin)
    return portal(request).pages.render("admin/key_remove.html", page_context(admin, key=key))


async def remove(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        if not same_origin_request(request, st.origins):
            raise HTTPException(403)
        form = await read_form(request)
        if not check_session_token(admin.session.csrf_token, field(form, "csrf")):
            raise HTTPException(403)
        if not admin.may("keys"):
            raise HTTPException(403)
        key_id = request.path_params["key_id"][:40]
        key = await s.get(RecipientKey, key_id)
        if key is None or key.tenant_id != admin.tenant.id:
            raise HTTPException(404)
        try:
            await recipient_keys.remove_key(s, admin.tenant.id, key.id, actor=admin.actor)
        except NotFound:
            raise HTTPException(404) from None
        await s.commit()
    return RedirectResponse("/admin/keys?done=removed", status_code=303)
