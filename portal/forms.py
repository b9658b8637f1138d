"""Reading the small urlencoded forms the portal's pages post."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

MAX_FIELD = 200


async def read_form(request: Request) -> FormData:
    """The form, with no files and few fields; anything malformed is a 400."""
    try:
        return await request.form(max_files=0, max_fields=8)
    except Exception:  # noqa: BLE001 - any malformed body is the client's error
        raise HTTPException(400) from None


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""
