"""``/api/v1/keys``: a tenant's directory of recipients' OpenPGP keys and S/MIME
certificates, for its admin API keys (the same bearer keys as :mod:`portal.api`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import recipient_keys
from core.errors import NotFound, PermanentError
from core.models import RecipientKey
from portal.api.common import Caller, caller_of_key, error
from portal.api.spec import TENANT_KEY, errors, ok, path_param
from portal.state import portal

MAX_BODY = recipient_keys.MAX_KEY_BYTES


def key_json(k: RecipientKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "kind": k.kind,
        "email": k.email,
        "fingerprint": k.fingerprint,
        "algorithm": k.algorithm,
        "bits": k.bits,
        "not_after": k.not_after,
        "source": k.source,
        "created_at": k.created_at,
    }


async def _admin(request: Request) -> Caller | Response:
    return await caller_of_key(request, ("admin",), "manage keys")


async def list_keys(request: Request) -> Response:
    caller = await _admin(request)
    if isinstance(caller, Response):
        return caller
    tenant = caller.tenant
    async with portal(request).services.db.session() as s:
        rows = await recipient_keys.list_keys(s, tenant.id)
    return JSONResponse(
        {"keys": [key_json(k) for k in rows]}, headers={"Cache-Control": "no-store"}
    )


async def import_keys(request: Request) -> Response:
    caller = await _admin(request)
    if isinstance(caller, Response):
        return caller
    tenant = caller.tenant
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return error(413, "key data too large (over 1 MiB)")
    async with portal(request).services.db.session() as s:
        try:
            rows = await recipient_keys.import_keys(s, tenant.id, bytes(body), actor=caller.actor)
        except PermanentError as exc:
            return error(422, str(exc))
        data = [key_json(k) for k in rows]
        await s.commit()
    return JSONResponse({"keys": data}, status_code=201)


async def remove_key(request: Request) -> Response:
    caller = await _admin(request)
    if isinstance(caller, Response):
        return caller
    tenant = caller.tenant
    ref = request.path_params["fingerprint"][:130]
    async with portal(request).services.db.session() as s:
        try:
            rows = await recipient_keys.remove_key(s, tenant.id, ref, actor=caller.actor)
        except NotFound:
            return error(404, "no such key")
        data = [key_json(k) for k in rows]
        await s.commit()
    return JSONResponse({"removed": data})


_KEY = {
    "type": "object",
    "required": ["id", "kind", "email", "fingerprint"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string", "enum": ["pgp", "smime"]},
        "email": {"type": "string"},
        "fingerprint": {"type": "string"},
        "algorithm": {"type": "string"},
        "bits": {"type": ["integer", "null"]},
        "not_after": {"type": ["number", "null"]},
        "source": {"type": "string"},
        "created_at": {"type": "number"},
    },
}
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def _keys(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [name],
        "properties": {name: {"type": "array", "items": _KEY}},
    }


PATHS: dict[str, Any] = {
    "/api/v1/keys": {
        "get": {
            "summary": "The tenant's recipient keys and certificates (admin keys)",
            "security": TENANT_KEY,
            "responses": {
                "200": ok("the keys (metadata, no key material)", _keys("keys")),
                **errors("403"),
            },
        },
        "post": {
            "summary": "Import OpenPGP public keys or X.509 certificates (admin keys)",
            "security": TENANT_KEY,
            "requestBody": {
                "required": True,
                "content": {
                    "application/pgp-keys": _BINARY,
                    "application/pkix-cert": _BINARY,
                    "application/x-pem-file": _BINARY,
                    "application/octet-stream": _BINARY,
                },
            },
            "responses": {
                "201": ok("the imported keys", _keys("keys")),
                **errors(
                    "403",
                    ("413", "over 1 MiB"),
                    ("422", "refused (expired, revoked, weak, private, ...): why"),
                ),
            },
        },
    },
    "/api/v1/keys/{fingerprint}": {
        "delete": {
            "summary": "Remove a key by fingerprint (or id) (admin keys)",
            "security": TENANT_KEY,
            "parameters": [path_param("fingerprint")],
            "responses": {"200": ok("the removed keys", _keys("removed")), **errors("403", "404")},
        }
    },
}
