"""``/admin/audit``: the tenant's audit log (issue 13, item 8) — newest first, filtered by
actor, action and dates, each event a sentence; ``/admin/audit.csv`` exports the same
selection as CSV, streamed in batches (a log of any size, flat memory). Always scoped to the
signed-in officer's tenant; admins and compliance officers.

The CSV is safe to open in a spreadsheet: a cell that starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is prefixed with ``'`` so it is never read as a formula.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Select, func, select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.models import AuditEvent
from portal.admin.context import officer, page_context
from portal.state import portal

PAGE = 50
BATCH = 1000
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

# what an action says, as the end of "<actor> ...": the known ones in words
ACTIONS = {
    "policy.set": "saved the policy",
    "policy.roll_back": "rolled the policy back",
    "tenant.update": "changed the tenant's settings",
    "tenant.create": "created the tenant",
    "tenant.retention": "changed retention",
    "tenant.network.add": "added a connector network",
    # setup page (issue 14, item 5)
    "setup.check.open": "started the setup check",
    "tenant.connector_token.issue": "issued a connector token",
    "tenant.connector_token.revoke": "revoked a connector token",
    "user.add": "added a user",
    "user.remove": "removed a user",
    "quarantine.view": "looked at a held message",
    "quarantine.hold": "held a message",
    "quarantine.release": "released a held message",
    "quarantine.reject": "rejected a held message",
    "message.revoke": "revoked a message",
    "message.resent": "sent a notice again",
    "message.receipt_sent": "sent an opened receipt",
    "message.shred": "destroyed a message's keys",
    "archive.hold.place": "placed a legal hold",
    "archive.hold.release": "released a legal hold",
    "archive.shred": "destroyed archived messages' keys",
    "archive.retention.extend": "extended retention",
    "portal.message.opened": "opened a message",
    "portal.message.viewed": "viewed a message",
    "portal.message.downloaded": "downloaded a message",
    "portal.code.sent": "was sent a sign-in code",
    "portal.verified": "signed in with a code",
    "portal.signed_out": "signed out",
    "billing.suspend": "suspended the service",
    "billing.resume": "resumed the service",
    "recipient_key.import": "imported a recipient key",
    "recipient_key.remove": "removed a recipient key",
}


def says(action: str) -> str:
    return ACTIONS.get(action, action.replace("_", " ").replace(".", " "))


def _details(detail: str) -> str:
    """The details as a short phrase ("version 7, rules 3"); never more than 300 chars."""
    try:
        data = json.loads(detail or "{}")
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = []
    for key, value in data.items():
        if isinstance(value, list | dict):
            value = ", ".join(map(str, value)) if isinstance(value, list) else "…"
        parts.append(f"{key.replace('_', ' ')} {value}")
    return "; ".join(parts)[:300]


def _day(text: str) -> float | None:
    try:
        d = datetime.date.fromisoformat(text.strip())
    except ValueError:
        return None
    return datetime.datetime(d.year, d.month, d.day, tzinfo=datetime.UTC).timestamp()


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "").strip()[:320] for k in ("actor", "action", "after", "before")}


def _select(tenant_id: str, f: dict[str, str]) -> tuple[Select[tuple[AuditEvent]], list[str]]:
    stmt = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    problems = []
    if f["actor"]:
        stmt = stmt.where(func.lower(AuditEvent.actor).contains(f["actor"].lower()))
    if f["action"]:
        stmt = stmt.where(AuditEvent.action == f["action"])
    for key, op in (("after", "ge"), ("before", "lt")):
        if f[key]:
            at = _day(f[key])
            if at is None:
                problems.append(f"'{f[key]}' is not a date like 2026-12-31.")
            elif op == "ge":
                stmt = stmt.where(AuditEvent.at >= at)
            else:
                stmt = stmt.where(AuditEvent.at < at + 86400)  # "before" includes that day
    return stmt, problems


async def audit_page(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    f = _filters(request)
    stmt, problems = _select(admin.tenant.id, f)
    try:
        before = int(request.query_params.get("older_than", "0") or 0)
    except ValueError:
        before = 0
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    async with st.services.db.session() as s:
        rows = list(
            (await s.execute(stmt.order_by(AuditEvent.id.desc()).limit(PAGE + 1))).scalars()
        )
        actions = sorted(
            (
                await s.execute(
                    select(AuditEvent.action)
                    .where(AuditEvent.tenant_id == admin.tenant.id)
                    .distinct()
                )
            ).scalars()
        )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    events = [
        {"at": r.at, "actor": r.actor, "says": says(r.action), "details": _details(r.detail)}
        for r in rows
    ]
    query = "&".join(f"{k}={v}" for k, v in f.items() if v)
    ctx = page_context(
        admin,
        events=events,
        filters=f,
        actions=[(a, says(a)) for a in actions],
        problems=problems,
        older=rows[-1].id if more and rows else None,
        query=query,
    )
    return st.pages.render("admin/audit.html", ctx, status=400 if problems else 200)


def _cell(value: Any) -> str:
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


async def audit_csv(request: Request) -> Response:
    st = portal(request)
    admin = await officer(st, request)
    if isinstance(admin, Response):
        return admin
    f = _filters(request)
    stmt, problems = _select(admin.tenant.id, f)
    if problems:
        return st.pages.error(400)
    db = st.services.db

    async def rows() -> AsyncIterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["time_utc", "actor", "action", "what", "subject", "details"])
        last: int | None = None
        while True:
            page = stmt.order_by(AuditEvent.id.desc()).limit(BATCH)
            if last is not None:
                page = page.where(AuditEvent.id < last)
            async with db.session() as s:
                batch = list((await s.execute(page)).scalars())
            for r in batch:
                when = datetime.datetime.fromtimestamp(r.at, datetime.UTC).isoformat(
                    timespec="seconds"
                )
                writer.writerow(
                    [
                        _cell(x)
                        for x in (when, r.actor, r.action, says(r.action), r.subject_id, r.detail)
                    ]
                )
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            if len(batch) < BATCH:
                return
            last = batch[-1].id

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="audit-log.csv"',
            "Cache-Control": "no-store",
        },
    )
