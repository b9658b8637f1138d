"""``/sent/{id}/receipt.json``: the signed receipt of one of the sender's own messages
(:mod:`core.evidence.receipt`), to hand to anyone; audited."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from core.audit import audit
from core.evidence.receipt import build
from portal.security import DOWNLOAD_CSP
from portal.sent.pages import own_message, signed_in
from portal.state import portal


async def sent_receipt(request: Request) -> Response:
    st = portal(request)
    async with st.services.db.session() as s:
        user = await signed_in(s, request)
        if isinstance(user, Response):
            return user
        msg = await own_message(s, user, request.path_params["message_id"])
        await audit(s, user.tenant.id, user.actor, "sent.receipt.downloaded", msg.id)
        await s.commit()
    data = await build(st.services, msg.id, user.tenant.id)
    body = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return Response(
        body.encode("utf-8"),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-{msg.id}.json"',
            "Content-Security-Policy": DOWNLOAD_CSP,
            "X-Content-Type-Options": "nosniff",
        },
    )
