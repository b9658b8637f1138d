"""The archive in the portal (issue 5): search and export for a tenant's compliance officers
(``/admin/archive...``) and the JSON API (``/api/v1/archive/...``)."""

from __future__ import annotations

from starlette.routing import BaseRoute

ROUTES: list[BaseRoute] = []
