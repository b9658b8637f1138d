"""Billing in the portal (issue 6): the signed webhook at ``/billing/webhook`` (SPEC §7,
handled by :mod:`billing_hooks`) and the tenant's billing standing pages."""

from __future__ import annotations

from starlette.routing import BaseRoute

ROUTES: list[BaseRoute] = []
