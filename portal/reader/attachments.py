"""``/messages/{id}/attachments/{n}``: an attachment as a download, with a safe file name and
a content type from a short list (anything else is ``application/octet-stream``)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.audit import audit
from core.models import SealedObject
from portal.reader.access import load_with_access, recipient_session
from portal.reader.receipts import mark_downloaded
from portal.security import DOWNLOAD_CSP
from portal.state import portal

SAFE_TYPES = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
}

_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;%]')


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    name = unicodedata.normalize("NFC", filename)
    name = _UNSAFE_FILENAME.sub("_", name).strip().lstrip(".") or "attachment"
    name = name[:180]
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r"[^A-Za-z0-9._ ()+=@,-]", "_", fallback).strip().lstrip(".")
    fallback = fallback or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def download_type(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    return base if base in SAFE_TYPES else "application/octet-stream"


async def attachment(request: Request) -> Response:
    st = portal(request)
    n: int = request.path_params["n"]
    async with st.services.db.session() as s:
        current = await recipient_session(s, request)
        msg, pm, access = await load_with_access(st, s, current, request.path_params["message_id"])
        if not 0 <= n < len(pm.attachments):
            raise HTTPException(404)
        part = pm.attachments[n]
        row = await s.get(SealedObject, part.object_id)
        if row is None or row.tenant_id != current.tenant_id:
            raise HTTPException(404)
        stream = await st.services.vault.stream(s, current.tenant_id, part.object_id)
        await mark_downloaded(s, access, "attachment")
        await audit(
            s, current.tenant_id, current.email, "portal.attachment.downloaded", msg.id, part=n
        )
        await s.commit()
    headers = {
        "Content-Disposition": content_disposition(part.filename or f"attachment-{n + 1}"),
        "Content-Length": str(row.size),
        "Content-Security-Policy": DOWNLOAD_CSP,
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(stream, media_type=download_type(part.content_type), headers=headers)
