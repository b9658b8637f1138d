"""The support area's URLs (the portal's route table lists them): the support API, ``/pin``
and ``/support``."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from portal.support.api import api_verify
from portal.support.desk import (
    desk_home,
    desk_letter,
    desk_login,
    desk_login_form,
    desk_logout,
    desk_lookup,
    desk_verify,
)
from portal.support.pin import pin_logout, pin_page, pin_reset, pin_send_code, pin_verify

ROUTES: list[BaseRoute] = [
    Route("/api/v1/support/verify", api_verify, methods=["POST"]),
    Route("/pin", pin_page, methods=["GET"]),
    Route("/pin/code", pin_send_code, methods=["POST"]),
    Route("/pin/verify", pin_verify, methods=["POST"]),
    Route("/pin/reset", pin_reset, methods=["POST"]),
    Route("/pin/logout", pin_logout, methods=["POST"]),
    Route("/support", desk_home, methods=["GET"]),
    Route("/support/login", desk_login_form, methods=["GET"]),
    Route("/support/login", desk_login, methods=["POST"]),
    Route("/support/logout", desk_logout, methods=["POST"]),
    Route("/support/lookup", desk_lookup, methods=["POST"]),
    Route("/support/verify", desk_verify, methods=["POST"]),
    Route("/support/letter", desk_letter, methods=["POST"]),
]
