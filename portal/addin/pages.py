"""The add-in's pages and files: the task pane, the commands page, the help page, the
commands script with its tenant, and the icons.

Outlook frames the pages, so they carry their own policy: framing only by Outlook's own
origins (never ``*``), scripts only from here and Microsoft's Office.js CDN (Microsoft
requires the add-in to load Office.js from there at run time), network only to the portal.
The icons are fetched by Outlook from its own origin, so they may be read cross-origin.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from core.models import Tenant
from portal.addin.manifests import https_base
from portal.addin.tenancy import manifest_tenant
from portal.state import portal

STATIC = Path(__file__).parent / "static"
OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"
OUTLOOK_ORIGINS = (
    "https://outlook.office.com",
    "https://outlook.office365.com",
    "https://outlook.live.com",
    "https://outlook.cloud.microsoft",
)
ADDIN_CSP = (
    "default-src 'self'; script-src 'self' https://appsforoffice.microsoft.com; "
    "style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "frame-src 'self' https://appsforoffice.microsoft.com; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; "
    f"frame-ancestors 'self' {' '.join(OUTLOOK_ORIGINS)}"
)
FRAMED = {"Content-Security-Policy": ADDIN_CSP, "Cache-Control": "no-cache"}
_FILES = {
    "commands.js": "text/javascript; charset=utf-8",
    "taskpane.js": "text/javascript; charset=utf-8",
    "taskpane.css": "text/css; charset=utf-8",
    **{f"icon-{n}.png": "image/png" for n in (16, 32, 64, 80, 128)},
    "color.png": "image/png",
    "outline.png": "image/png",
}
_NOT_HERE = "No such tenant here. On the service's own host, add ?tenant=<tenant id>.\n"


def _query(tenant: Tenant) -> str:
    return "" if tenant.portal_host else f"?tenant={tenant.id}"


async def _page(request: Request, name: str) -> Response:
    tenant = await manifest_tenant(request)
    if tenant is None:
        return PlainTextResponse(_NOT_HERE, status_code=404)
    ctx = {"tenant": tenant, "query": _query(tenant), "office_js": OFFICE_JS}
    return portal(request).pages.render(f"addin/{name}", ctx, headers=FRAMED)


async def taskpane(request: Request) -> Response:
    """``GET /addin/taskpane.html``."""
    return await _page(request, "taskpane.html")


async def commands_page(request: Request) -> Response:
    """``GET /addin/commands.html``."""
    return await _page(request, "commands.html")


async def help_page(request: Request) -> Response:
    """``GET /addin/help``: what the add-in does, its privacy and terms."""
    return await _page(request, "help.html")


async def commands_js(request: Request) -> Response:
    """``GET /addin/commands.js``: the commands script, with the line that names its tenant."""
    tenant = await manifest_tenant(request)
    if tenant is None:
        return PlainTextResponse(_NOT_HERE, status_code=404)
    tenant_id = "" if tenant.portal_host else tenant.id
    base = https_base(portal(request).settings.portal_base_url, tenant)
    head = f"globalThis.sealmailAddin = {json.dumps({'base': base, 'tenant': tenant_id})};\n"
    body = (STATIC / "commands.js").read_text()
    return Response(
        head + body,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


def _file(name: str) -> Response:
    ctype = _FILES.get(name)
    if ctype is None:
        return PlainTextResponse("Not found\n", status_code=404)
    return Response(
        (STATIC / name).read_bytes(),
        media_type=ctype,
        headers={
            "Cache-Control": "public, max-age=3600",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


async def static_file(request: Request) -> Response:
    """``GET /addin/static/{name}``: the add-in's scripts, stylesheet and icons."""
    return _file(request.path_params["name"])


async def package_icon(request: Request) -> Response:
    """``GET /addin/color.png`` and ``/addin/outline.png``: the unified manifest's icons,
    beside it as in an app package."""
    return _file(request.url.path.rsplit("/", 1)[-1])
