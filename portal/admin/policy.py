"""``/admin/policy``: the tenant's encryption policy in the browser (issue 13, item 8).

The document (YAML, as ``sealmail policy export`` writes it) in an editor; saving validates it
with the one parser (:func:`core.policy.model.parse_policy`) and shows an error at its line
with that line quoted; a saved version applies to the next message (the pipeline reads the
stored policy for every message). A dry run tries a pasted message against the text in the
editor, saved or not, and says per recipient what would happen and why, in the sentences of
:mod:`portal.admin.why`. The history (``/admin/policy/history``) lists every version with
who saved it; a version's page shows it, what differs from the current one, and rolls back
to it (a new version equal to it). Admins change; compliance officers read and dry-run.
"""

from __future__ import annotations

import difflib
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.errors import NotFound
from core.models import Tenant
from core.policy import PolicyError
from core.policy.model import Policy, dump_policy, parse_policy
from core.policy.store import get_stored, roll_back, set_policy, version_of, versions
from portal.admin import why
from portal.admin.context import officer, page_context
from portal.admin.doors import Admin, checked_large_form, current_admin
from portal.policy_trial import try_policy
from portal.state import PortalState, portal

MAX_DOCUMENT = 256 * 1024
MAX_MESSAGE = 2 * 1024 * 1024
MAX_RECIPIENTS = 50
NOTICES = {"saved": "Policy saved. It applies to the next message.", "rolled": "Rolled back."}


async def _form(request: Request, admin: Admin) -> FormData:
    """The editor's form: a whole document and maybe a pasted message."""
    return await checked_large_form(request, admin, 3 * (MAX_DOCUMENT + MAX_MESSAGE))


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def problem_of(exc: PolicyError, text: str) -> dict[str, Any]:
    """The error for the page: a sentence, its line and that line of the document."""
    lines = text.splitlines()
    line = exc.line if exc.line and exc.line > 0 else None
    quoted = lines[line - 1] if line and line <= len(lines) else ""
    where = f"Line {line}" if line else ""
    if line and line > len(lines):
        where = f"Line {line} (the end of the policy)"
    if exc.field:
        where = f"{where} ({exc.field})" if where else f"At {exc.field}"
    message = exc.message[:1].upper() + exc.message[1:]
    return {
        "sentence": f"{where}: {message}" if where else message,
        "line": line if quoted else None,
        "quoted": quoted,
    }


async def _page(
    st: PortalState,
    admin: Admin,
    *,
    text: str | None = None,
    problem: dict[str, Any] | None = None,
    trial: list[dict[str, Any]] | None = None,
    trial_error: str = "",
    message: str = "",
    mail_from: str = "",
    rcpts: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    async with st.services.db.session() as s:
        try:
            stored = await get_stored(s, admin.tenant.id)
            current = dump_policy(stored.policy, "yaml") if stored.version else ""
        except PolicyError as exc:  # an unreadable stored document: say so, offer history
            stored, current = None, ""
            problem = problem or {"sentence": f"The saved policy is invalid: {exc}", "line": None}
    ctx = page_context(
        admin,
        document=current if text is None else text,
        version=stored.version if stored else None,
        updated_at=stored.updated_at if stored else None,
        updated_by=stored.updated_by if stored else "",
        may_change=admin.user.role == "admin",
        problem=problem,
        trial=trial,
        trial_error=trial_error,
        message=message,
        mail_from=mail_from or admin.user.email,
        rcpts=rcpts,
        notice=notice,
        example=EXAMPLE,
    )
    return st.pages.render("admin/policy.html", ctx, status=status)


async def policy_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return await _page(st, admin, notice=notice)


async def save_policy(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await _form(request, admin)
        if admin.user.role != "admin":
            raise HTTPException(404)
        text = _text(form, "document", MAX_DOCUMENT + 1)
        if len(text) > MAX_DOCUMENT:
            problem = {"sentence": "The policy is larger than 256 KB.", "line": None}
            return await _page(st, admin, text=text[:MAX_DOCUMENT], problem=problem, status=400)
        fmt = "json" if text.lstrip().startswith("{") else "yaml"
        try:
            policy = parse_policy(text, fmt) if text.strip() else Policy()
        except PolicyError as exc:
            return await _page(st, admin, text=text, problem=problem_of(exc, text), status=400)
        note = _text(form, "note", 200).strip()
        await set_policy(s, admin.tenant.id, policy, admin.actor, note=note)
        await s.commit()
    return RedirectResponse("/admin/policy?done=saved", status_code=303)


def _explained(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "sentences": why.sentences(
            row["action"], row["rule"], row["disposition"], row["explanation"]
        ),
    }


async def dry_run(request: Request) -> Response:
    """Try a pasted message against the editor's text (saved or not); nothing is stored."""
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        form = await _form(request, admin)
        text = _text(form, "document", MAX_DOCUMENT)
        message = _text(form, "message", MAX_MESSAGE)
        mail_from = _text(form, "mail_from", 320).strip() or admin.user.email
        rcpts_text = _text(form, "rcpts", 20_000)
        rcpts = [r for r in rcpts_text.replace(",", " ").replace(";", " ").split() if r][
            :MAX_RECIPIENTS
        ]
        keep = {"message": message, "mail_from": mail_from, "rcpts": rcpts_text}
        fmt = "json" if text.lstrip().startswith("{") else "yaml"
        try:
            policy = parse_policy(text, fmt) if text.strip() else Policy()
        except PolicyError as exc:
            problem = problem_of(exc, text)
            return await _page(st, admin, text=text, problem=problem, status=400, **keep)
        if not rcpts or not message.strip():
            return await _page(
                st,
                admin,
                text=text,
                trial_error="Paste a message and name at least one recipient to try it.",
                status=400,
                **keep,
            )
        tenant = await s.get(Tenant, admin.tenant.id)
        assert tenant is not None
        raw = message.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace")
        if b"\r\n\r\n" not in raw:  # only a body was pasted: give it the headers it lacks
            raw = f"From: {mail_from}\r\nSubject: \r\n\r\n".encode() + raw
        rows = await try_policy(
            s,
            tenant,
            policy,
            raw,
            mail_from=mail_from,
            recipients=rcpts,
            keywords=st.settings.trigger_keywords,
        )
    trial = [_explained(r) for r in rows]
    return await _page(st, admin, text=text, trial=trial, **keep)


async def history(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    async with st.services.db.session() as s:
        rows = await versions(s, admin.tenant.id)
        stored = await get_stored(s, admin.tenant.id)
    ctx = page_context(admin, versions=rows, current=stored.version)
    return st.pages.render("admin/policy_history.html", ctx)


def _number(request: Request) -> int:
    try:
        return int(request.path_params["version"])
    except ValueError:
        raise HTTPException(404) from None


async def version_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    number = _number(request)
    async with st.services.db.session() as s:
        row = await version_of(s, admin.tenant.id, number)
        stored = await get_stored(s, admin.tenant.id)
    if row is None:
        raise HTTPException(404)
    text = dump_policy(parse_policy(row.document, "json"), "yaml")
    current = dump_policy(stored.policy, "yaml")
    diff = [
        {"kind": line[0], "text": line[1:]}
        for line in difflib.unified_diff(current.splitlines(), text.splitlines(), lineterm="", n=1)
        if line[:1] in "+- " and not line.startswith(("+++", "---"))
    ]
    ctx = page_context(
        admin,
        row=row,
        text=text,
        diff=diff,
        current=stored.version,
        may_change=admin.user.role == "admin",
    )
    return st.pages.render("admin/policy_version.html", ctx)


async def rollback(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await current_admin(s, request)
        if admin is None:
            raise HTTPException(401)
        await _form(request, admin)
        if admin.user.role != "admin":
            raise HTTPException(404)
        try:
            await roll_back(s, admin.tenant.id, _number(request), admin.actor)
        except NotFound:
            raise HTTPException(404) from None
        await s.commit()
    return RedirectResponse("/admin/policy?done=rolled", status_code=303)


EXAMPLE = """\
From: alice@yourcompany.example
To: bob@client.example
Subject: Card details for the booking

Hello Bob, the card is 4111 1111 1111 1111.
"""
