"""``/admin``: the overview of a tenant's quarantine and recent decisions, and the messages
that wait or failed."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from starlette.requests import Request
from starlette.responses import Response

from core import quarantine
from core.models import AuditEvent, Message
from core.policy.models import PolicyDecision
from portal.admin.context import page_context, quarantine_officer
from portal.state import portal

RECENT = 20


async def overview(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        admin = await quarantine_officer(st, s, request)
        if isinstance(admin, Response):
            return admin
        held = await quarantine.count_held(s, admin.tenant.id)
        recent = (
            (
                await s.execute(
                    select(PolicyDecision)
                    .where(PolicyDecision.tenant_id == admin.tenant.id)
                    .order_by(PolicyDecision.at.desc(), PolicyDecision.id.desc())
                    .limit(RECENT)
                )
            )
            .scalars()
            .all()
        )
        events = (
            (
                await s.execute(
                    select(AuditEvent)
                    .where(
                        AuditEvent.tenant_id == admin.tenant.id,
                        AuditEvent.action.like("quarantine.%"),
                    )
                    .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                    .limit(10)
                )
            )
            .scalars()
            .all()
        )
        waiting = (
            (
                await s.execute(
                    select(Message)
                    .where(
                        Message.tenant_id == admin.tenant.id,
                        or_(
                            and_(Message.state == "received", Message.attempts > 0),
                            Message.state == "failed",
                        ),
                    )
                    .order_by(Message.received_at.desc())
                    .limit(RECENT)
                )
            )
            .scalars()
            .all()
        )
    ctx = page_context(admin, held_count=held, decisions=recent, events=events, waiting=waiting)
    return st.pages.render("admin/overview.html", ctx)
