"""What the passkey endpoints answer ``/static/passkeys.js``: JSON, never a page."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

TOO_MANY_TRIES = "Too many tries. Please wait an hour and try again."


def failed(message: str, status: int = 400) -> JSONResponse:
    """A sentence the script shows in the page's alert."""
    return JSONResponse({"error": message}, status_code=status)


def json_redirect(response: Response) -> JSONResponse:
    """A sign-in's redirect as JSON (the script follows it), its cookies kept."""
    out = JSONResponse({"redirect": response.headers["location"]})
    out.raw_headers.extend((k, v) for k, v in response.raw_headers if k == b"set-cookie")
    return out
