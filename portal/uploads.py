"""Reading a form with attachments (a reply, a forward, ``/compose``): multipart, bounded
before and while it is parsed; one way for every page that uploads.

A request larger than ``smtp_max_message_size`` plus room for the form's own fields is
refused with a readable 413 before a byte is parsed (by its ``Content-Length``) and, when
it lies or has none, as soon as more than that arrives. Starlette's parser spools each file
to disk past 1 MiB, so memory stays bounded whatever the attachments weigh.
"""

from __future__ import annotations

import dataclasses
import re

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message

from conversations.compose import Upload

FORM_OVERHEAD = 1024 * 1024  # the text field, the addresses, multipart boundaries and heads
MAX_FILES = 20
MAX_FIELDS = 12
MAX_TEXT = 512 * 1024  # characters of a reply's own text (the text field part limit too)
MAX_FILENAME = 200
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


class TooLarge(Exception):
    """The request is larger than a message may be (or a text field than its bound)."""


class TooManyFiles(Exception):
    """More files than the form takes."""


@dataclasses.dataclass
class Posted:
    form: FormData
    uploads: list[Upload]

    def text(self, name: str, limit: int = MAX_TEXT) -> str:
        value = self.form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    async def close(self) -> None:
        await self.form.close()


def request_limit(max_message_size: int) -> int:
    return max_message_size + FORM_OVERHEAD


def encoded_size(raw_size: int) -> int:
    """What ``raw_size`` bytes of a file weigh in the message (base64, 76-character lines)."""
    return (raw_size + 2) // 3 * 4 * 78 // 76


def safe_filename(name: str | None) -> str:
    """The file's own name (no folders, printable characters, at most 200), or "attachment"."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    return cleaned[:MAX_FILENAME] or "attachment"


def media_type(value: str) -> str:
    """The browser's type for a file without parameters, or ``application/octet-stream``."""
    base = value.split(";", 1)[0].strip().lower()
    return base if _MEDIA_TYPE.match(base) else "application/octet-stream"


def _bounded(request: Request, limit: int) -> Request:
    """The same request whose body raises :class:`TooLarge` past ``limit`` bytes."""
    seen = 0
    receive = request.receive

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge
        return message

    return Request(request.scope, limited)


async def read_posted(
    request: Request,
    max_message_size: int,
    *,
    max_files: int = MAX_FILES,
    max_fields: int = MAX_FIELDS,
    max_text: int = MAX_TEXT,
) -> Posted | None:
    """The form and its files (empty file inputs left out), None when malformed; raises
    :class:`TooLarge` for a body over the limit (before parsing when the length is known)
    or a text field over ``max_text`` characters, :class:`TooManyFiles` past ``max_files``."""
    limit = request_limit(max_message_size)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    bounded = _bounded(request, limit)
    try:
        form = await bounded.form(
            max_files=max_files, max_fields=max_fields, max_part_size=max_text * 4 + 1024
        )
    except TooLarge:
        raise
    except MultiPartException as exc:
        if "Too many files" in exc.message:
            raise TooManyFiles from None
        if "maximum size" in exc.message:
            raise TooLarge from None
        return None
    except Exception:  # noqa: BLE001 - any malformed body is the client's error
        return None
    uploads: list[Upload] = []
    for item in form.getlist("attachments"):
        if not isinstance(item, UploadFile) or not item.filename:
            continue  # an empty file input still sends a nameless part
        size = item.size if item.size is not None else 0
        uploads.append(
            Upload(
                filename=safe_filename(item.filename),
                content_type=media_type(item.content_type or ""),
                file=item.file,
                size=size,
            )
        )
    return Posted(form, uploads)
