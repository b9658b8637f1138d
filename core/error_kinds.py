"""Which kind of failure an exception is: our own outage, or something about the message.

The two are retried differently. Our outage (the database, the store, the key service
unreachable; :class:`~core.errors.TransientError`) costs the message nothing: it is tried
again three seconds later, without counting an attempt, so it goes as soon as the service
is back. Anything else failed on the message's own content (a parse or decode error, a
structure nested too deeply, :class:`~core.errors.PermanentError`); retrying will not make it
go away, so after a few quick tries the message ends with a bounce naming the reason.

``last_error`` columns carry the kind as a prefix (``outage: ...``, ``content: ...``), so
``sealmail queue`` can say which without a column of its own.
"""

from __future__ import annotations

import email.errors
import re

from sqlalchemy import exc as sa_exc

from core.errors import IntegrityError, NotFound, PermanentError, TransientError

OUTAGE = "outage"
CONTENT = "content"

OUTAGE_RETRY_SECONDS = 3.0  # our outage: try again this soon (no attempt counted)
CONTENT_TRIES = 3  # a content error: this many passes, then the message is bounced
CONTENT_RETRY_SECONDS = 30.0  # the first wait between those passes (doubling)
CONTENT_STATUS = "5.6.0"  # RFC 3463: other or undefined media error

_SA_OUTAGE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # the connection pool ran dry
)
# asyncpg's connection errors, by name (asyncpg is only imported with a PostgreSQL URL)
_ASYNCPG_OUTAGE = {
    "AdminShutdownError",
    "CannotConnectNowError",
    "ClientCannotConnectError",
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "ConnectionRejectionError",
    "CrashShutdownError",
    "InterfaceError",
    "PostgresConnectionError",
    "TooManyConnectionsError",
}


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from (``raise ... from``, a driver's original)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo and len(seen) < 16:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo.append(e.__cause__)
        orig = getattr(e, "orig", None)
        if isinstance(orig, BaseException):
            todo.append(orig)
    return seen


def _outage_link(e: BaseException) -> bool:
    if isinstance(e, TransientError | IntegrityError | NotFound):
        # TransientError: translated at a package edge. IntegrityError and NotFound come
        # from our own store and keys (a damaged object, a wrong root key): never the
        # sender's fault, so never a bounce.
        return True
    if isinstance(e, OSError):  # ConnectionError and TimeoutError included
        return True
    if isinstance(e, _SA_OUTAGE):
        return True
    if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
        return True
    module = type(e).__module__ or ""
    return module.startswith("asyncpg") and any(
        c.__name__ in _ASYNCPG_OUTAGE for c in type(e).__mro__
    )


def is_outage(error: BaseException) -> bool:
    """Is ``error`` our own outage (retry soon, count nothing), not the message's fault?"""
    return any(_outage_link(e) for e in _chain(error))


def content_reason(error: BaseException) -> str:
    """What a person reads in the bounce: why this message could not be processed."""
    if isinstance(error, PermanentError) and str(error):
        return f"the message could not be processed: {error}"
    return f"the message could not be processed: {_what(error)}"


def _what(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "its MIME structure is nested too deeply"
    if isinstance(error, email.errors.HeaderParseError):
        return "a header could not be decoded"
    if isinstance(error, UnicodeError):
        return "part of it could not be decoded"
    if isinstance(error, email.errors.MessageError):
        return "its MIME structure could not be read"
    text = str(error).lower()
    if isinstance(error, sa_exc.DataError) or "\x00" in text or re.search(r"\bnull? ", text + " "):
        return "a header holds a character that cannot be used (such as a NUL or a line break)"
    if type(error) is LookupError:  # codecs: "unknown encoding" (not KeyError, IndexError)
        return "it names a character set that does not exist"
    return f"its content could not be handled ({type(error).__name__})"


def kind_of(last_error: str) -> str:
    """The kind recorded in a ``last_error`` column: ``outage``, ``content`` or ``""``."""
    head, sep, _ = (last_error or "").partition(": ")
    return head if sep and head in (OUTAGE, CONTENT) else ""


def labelled(kind: str, text: str) -> str:
    """``text`` with its kind in front, as stored in ``last_error`` (500 characters)."""
    return f"{kind}: {text}"[:500]


def status_of_message(state: str, last_error: str, attempts: int) -> str:
    """What ``sealmail queue`` says of an incoming message's last error: whether it is
    being retried (our outage, or encryption that cannot happen yet), will be bounced (a
    content error, and how many tries are left) or was bounced, and why."""
    if not last_error:
        return ""
    kind = kind_of(last_error)
    text = last_error[len(kind) + 2 :] if kind else last_error
    if state == "failed":
        return f"bounced because {text}"
    if state != "received":
        return ""
    if kind == OUTAGE:
        return f"retrying (our outage): {text}"
    if kind == CONTENT:
        left = max(0, CONTENT_TRIES - attempts)
        return f"will be bounced (content error, {left} more tries): {text}"
    return f"retrying: {text}"
