"""``/sent/{id}/receipt.json`` and ``receipt.pdf``: the signed receipt of one of the
sender's own messages (:mod:`core.evidence.receipt`), to hand to anyone, as JSON or as a PDF
a person reads that carries the same signed JSON (:mod:`core.evidence.paper`); audited."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import Response

from core.audit import audit
from core.evidence.paper import render
from core.evidence.receipt import build
from portal.security import DOWNLOAD_CSP
from portal.sent.pages import own_message, signed_in
from portal.state import portal


async def sent_receipt(request: Request) -> Response:
    """The JSON receipt, or (``receipt.pdf``) the PDF that carries it."""
    st = portal(request)
    async with st.services.db.session() as s:
        user = await signed_in(s, request)
        if isinstance(user, Response):
            return user
        msg = await own_message(s, user, request.path_params["message_id"])
        await audit(s, user.tenant.id, user.actor, "sent.receipt.downloaded", msg.id)
        await s.commit()
    data = await build(st.services, msg.id, user.tenant.id)
    pdf = request.url.path.endswith(".pdf")
    if pdf:
        body = await asyncio.to_thread(render, data, st.settings.portal_base_url)
    else:
        body = (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    suffix = "pdf" if pdf else "json"
    return Response(
        body,
        media_type="application/pdf" if pdf else "application/json",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-{msg.id}.{suffix}"',
            "Content-Security-Policy": DOWNLOAD_CSP,
            "X-Content-Type-Options": "nosniff",
        },
    )
