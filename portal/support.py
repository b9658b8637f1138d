"""Support PINs in the portal (issue 6, SPEC §8): ``/pin`` for account contacts and
``/support`` for the support desk."""

from __future__ import annotations

from starlette.routing import BaseRoute

ROUTES: list[BaseRoute] = []
