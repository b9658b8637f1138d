"""``POST /addin/api/passphrase``: the Outlook add-in registers the passphrase its user set
for the message being written (``{passphrase, hint, recipients}``, the user's add-in token)
and gets back the reference it puts in the ``X-Sealmail-Passphrase-Ref`` header. The
passphrase itself never goes into the message (it would stay in Sent Items); only its hash
is kept, and its sealed copy until the message was processed (:mod:`conversations.guards`)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conversations import guards
from core.audit import audit
from portal.addin.auth import token_user
from portal.api.common import bounded_body, error
from portal.state import portal

MAX_BODY = 64 * 1024


async def register(request: Request) -> Response:
    st = portal(request)
    user = await token_user(request, st)
    if isinstance(user, Response):
        return user
    body = await bounded_body(request, MAX_BODY)
    if body is None:
        return error(413, "send the passphrase and its hint only")
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return error(400, "send a JSON object")
    if not isinstance(data, dict):
        return error(400, "send a JSON object")
    passphrase, hint = data.get("passphrase"), data.get("hint", "")
    recipients = data.get("recipients", [])
    if not isinstance(passphrase, str) or not isinstance(hint, str):
        return error(422, "passphrase and hint must be strings")
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        return error(422, "recipients must be a list of addresses")
    problem = guards.passphrase_problem(passphrase, recipients=recipients[:500])
    problem = problem or guards.hint_problem(hint.strip(), passphrase)
    if problem:
        return error(422, problem)
    async with st.services.db.session() as s:
        ref = await guards.register(
            s, st.services.vault, user.tenant.id, user.email, passphrase, hint
        )
        await audit(s, user.tenant.id, user.email, "addin.passphrase.registered", ref)
        await s.commit()
    return JSONResponse({"ref": ref, "header": "X-Sealmail-Passphrase-Ref"})
