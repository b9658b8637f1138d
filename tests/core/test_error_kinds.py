"""Which failures are our own outage (retried within seconds, nothing counted) and which
are about the message (a few tries, then a bounce naming the reason)."""

from __future__ import annotations

import email.errors
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import create_async_engine

from core import error_kinds
from core.errors import PermanentError, TransientError
from tests.helpers.smtp_sink import free_port


def _asyncpg(name: str) -> Exception:
    import asyncpg.exceptions

    return getattr(asyncpg.exceptions, name)("connection lost")


def _wrapped(outer: type[sa_exc.DBAPIError], inner: Exception) -> Exception:
    return outer("SELECT 1", {}, inner)


OUTAGES = [
    TransientError("database unavailable"),
    ConnectionRefusedError(111, "refused"),
    TimeoutError(),
    OSError(5, "I/O error"),
    sa_exc.TimeoutError("QueuePool limit reached"),
    _wrapped(sa_exc.OperationalError, Exception("server closed the connection")),
    _wrapped(sa_exc.InterfaceError, Exception("connection is closed")),
]
CONTENT = [
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (email.errors.HeaderParseError("bad"), "a header could not be decoded"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "could not be decoded"),
    (ValueError("embedded null character"), "such as a NUL"),
    (ValueError("header 'Subject' contains a line break or NUL"), "such as a NUL"),
    (ValueError("not a number"), "(ValueError)"),
    (LookupError("unknown encoding: x-klingon"), "character set"),
    (KeyError("content-type"), "(KeyError)"),
    (TypeError("NoneType"), "(TypeError)"),
    (PermanentError("it is a loop"), "could not be processed: it is a loop"),
    (_wrapped(sa_exc.DataError, Exception('invalid byte sequence for "UTF8": 0x00')), "NUL"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
def test_our_outage(error: Exception) -> None:
    assert error_kinds.is_outage(error)


@pytest.mark.timeout(10)
def test_asyncpg_connection_errors_and_a_driver_cause_are_outages() -> None:
    for name in ("ConnectionDoesNotExistError", "AdminShutdownError", "CannotConnectNowError"):
        assert error_kinds.is_outage(_asyncpg(name))
    # SQLAlchemy's wrapper of another kind, raised from a lost connection
    try:
        try:
            raise _asyncpg("ConnectionDoesNotExistError")
        except Exception as inner:
            raise sa_exc.ProgrammingError("SELECT 1", {}, Exception("x")) from inner
    except sa_exc.ProgrammingError as outer:
        assert error_kinds.is_outage(outer)
    invalidated = sa_exc.DBAPIError("SELECT 1", {}, Exception("x"), connection_invalidated=True)
    assert error_kinds.is_outage(invalidated)
    # a ValueError merely raised while an OSError was being handled is not an outage
    try:
        try:
            raise OSError("x")
        except OSError:
            raise ValueError("bad charset") from None
    except ValueError as exc:
        assert not error_kinds.is_outage(exc)


@pytest.mark.timeout(30)
async def test_real_unreachable_databases_are_outages(tmp_path: Path) -> None:
    engine = create_async_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none",
        connect_args={"timeout": 5},
    )
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - any error, classified below
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert error_kinds.is_outage(caught.value), repr(caught.value)
    finally:
        await engine.dispose()
    sqlite = create_engine(f"sqlite:///{tmp_path}/no/such/dir/x.db")
    try:
        with pytest.raises(sa_exc.OperationalError) as caught_sqlite, sqlite.connect():
            pass
        assert error_kinds.is_outage(caught_sqlite.value)
    finally:
        sqlite.dispose()


@pytest.mark.timeout(10)
def test_the_kind_is_read_back_from_last_error() -> None:
    assert error_kinds.kind_of(error_kinds.labelled("outage", "OperationalError")) == "outage"
    assert error_kinds.kind_of("content: the message could not be processed: x") == "content"
    assert error_kinds.kind_of("EncryptionFailed: no key yet") == ""
    assert error_kinds.kind_of("") == ""


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("error", "words"), CONTENT, ids=lambda e: type(e).__name__)
def test_content_error_and_its_reason(error: Exception, words: str) -> None:
    assert not error_kinds.is_outage(error)
    reason = error_kinds.content_reason(error)
    assert reason.startswith("the message could not be processed: ") and words in reason


@pytest.mark.timeout(10)
def test_what_the_queue_says_of_each_kind() -> None:
    say = error_kinds.status_of_message
    outage = error_kinds.labelled("outage", "OperationalError")
    content = error_kinds.labelled("content", "the message could not be processed: x")
    assert say("received", outage, 0) == "retrying (our outage): OperationalError"
    assert say("received", content, 1) == (
        "will be bounced (content error, 2 more tries): the message could not be processed: x"
    )
    assert say("failed", content, 3) == "bounced because the message could not be processed: x"
    assert say("received", "EncryptionFailed: no key yet", 2) == (
        "retrying: EncryptionFailed: no key yet"
    )
    assert say("processed", "", 0) == ""
