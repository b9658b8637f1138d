"""The sender's door: ``/sent/login``, ``/sent/verify`` and ``/sent/logout`` are the admin
sign-in (:mod:`portal.admin.auth`) at :data:`portal.admin.doors.SENDER_DOOR`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from portal.admin import auth as admin_auth
from portal.admin.doors import SENDER_DOOR


async def login_form(request: Request) -> Response:
    return await admin_auth.login_form(request, SENDER_DOOR)


async def send_code(request: Request) -> Response:
    return await admin_auth.send_code(request, SENDER_DOOR)


async def verify(request: Request) -> Response:
    return await admin_auth.verify(request, SENDER_DOOR)


async def logout(request: Request) -> Response:
    return await admin_auth.logout(request, SENDER_DOOR)
