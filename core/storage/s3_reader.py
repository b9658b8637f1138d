"""Reading an S3 object as a file: the GetObject body as a raw stream that survives a
dropped connection by resuming with a ranged GET of the same version (If-Match on the
ETag); failures become the project's errors."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

from core.storage.s3_errors import NETWORK_ERRORS, ErrorOf

RangedGet = Callable[[int, dict[str, Any]], dict[str, Any]]
"""GetObject from byte ``offset`` on, with extra arguments (If-Match); the response."""


class ResumingBody(io.RawIOBase):
    """The GetObject body as a raw file; a dropped connection resumes once or twice with
    a ranged GET of the same version (If-Match on the ETag), errors become ours."""

    RESUMES = 3

    def __init__(self, response: dict[str, Any], ranged_get: RangedGet, error: ErrorOf) -> None:
        self._ranged_get, self._error = ranged_get, error
        self._body = response["Body"]
        self._etag = response.get("ETag")
        self._length = int(response.get("ContentLength", 0))
        self._pos = 0
        self._resumes = self.RESUMES

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._pos >= self._length or len(view) == 0:
            return 0
        while True:
            try:
                data = self._body.read(len(view))
                break
            except NETWORK_ERRORS as exc:
                if self._resumes <= 0:
                    raise self._error(exc) from exc
                self._resumes -= 1
                self._reopen()
        n = len(data)
        view[:n] = data
        self._pos += n
        return n

    def _reopen(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        args = {"IfMatch": self._etag} if self._etag else {}
        try:
            r = self._ranged_get(self._pos, args)
        except NETWORK_ERRORS as exc:
            raise self._error(exc) from exc
        self._body = r["Body"]

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()
