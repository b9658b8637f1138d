"""OpenPGP encryption to a recipient's key from the tenant's directory: PGP/MIME (RFC 3156).

**GnuPG homes.** One per tenant, ``<data_dir>/gnupg/<tenant_id>`` (0700), a cache rebuilt
from the directory (the database is the truth): keys missing from the home are imported,
keys no longer in the directory are deleted. A marker file with a digest of the directory's
keys makes the common case (nothing changed) cost no gpg call.

**Trust.** gpg runs with ``--trust-model direct``: a key is valid only if its ownertrust
says so, and there is no web of trust (no key can vouch for another). Every key imported
from the directory — and only those, all of which passed ``core.recipient_keys``'
validation — gets ownertrust "full". A key that got into a home some other way has no
validity, and gpg refuses to encrypt to it. We encrypt to one full primary fingerprint read
from the directory, never to a name or address. gpg still refuses expired or revoked keys
on its own.

**Processes.** Every gpg call runs in a thread (``asyncio.to_thread``), with
``--no-autostart``: public-key operations need no gpg-agent, so none is started;
:func:`stop_agents` still runs ``gpgconf --kill all`` per home when the worker stops.

Every failure raises ``TransientError``: the message waits and is retried, and bounces only
at ``queue_lifetime``. Nothing here ever returns clear text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from email.message import MIMEPart
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from core.errors import SealmailError, TransientError
from core.models import RecipientKey, Tenant
from core.recipient_keys import list_keys, usable_keys
from core.services import Services
from gateway.pipeline.crypto import mime
from gateway.pipeline.crypto.large import (
    PLACEHOLDER,
    ChunkReader,
    LargeSource,
    Spooled,
    around_placeholder,
    crlf_lines,
    read_file,
)

log = logging.getLogger("sealmail.gateway.crypto.pgp")

GPG_OPTIONS = [
    "--no-autostart",
    "--trust-model",
    "direct",
    "--auto-key-locate",
    "local",
    "--no-auto-key-retrieve",
]
PREAMBLE = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n"
_MARKER = "sealmail-directory.sha256"
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def home_for(data_dir: str | os.PathLike[str], tenant_id: str) -> Path:
    return Path(data_dir) / "gnupg" / tenant_id


def _lock(home: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(home), threading.Lock())


def _gpg(home: Path):  # -> gnupg.GPG
    import gnupg

    if shutil.which("gpg") is None:
        raise TransientError("cannot encrypt with OpenPGP: gpg is not installed or not on PATH")
    return gnupg.GPG(gnupghome=str(home), options=list(GPG_OPTIONS))


def _digest(keys: Sequence[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for fpr, material in sorted(keys):
        h.update(fpr.encode() + b"\0" + hashlib.sha256(material).digest())
    return h.hexdigest()


def sync_home(home: Path, keys: Sequence[tuple[str, bytes]]) -> None:
    """Make the GnuPG home hold exactly ``keys`` ((fingerprint, armored key)), all trusted."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    marker = home / _MARKER
    digest = _digest(keys)
    if marker.exists() and marker.read_text() == digest:
        return
    gpg = _gpg(home)
    wanted = {fpr.upper(): material for fpr, material in keys}
    present = {k["fingerprint"].upper() for k in gpg.list_keys()}
    for fpr in present - set(wanted):
        gpg.delete_keys(fpr)
    if wanted:
        result = gpg.import_keys(b"".join(wanted.values()))
        if not result.count:
            raise TransientError(
                f"gpg could not import the directory's keys: {result.stderr[-200:]}"
            )
        trusted = gpg.trust_keys(list(wanted), "TRUST_FULLY")
        if getattr(trusted, "status", "") != "ok" and trusted.returncode:
            raise TransientError("gpg could not set the directory keys' trust")
    left = {k["fingerprint"].upper() for k in gpg.list_keys()}
    if left != set(wanted):
        raise TransientError("the GnuPG home does not match the key directory")
    marker.write_text(digest)


def encrypt_in_home(home: Path, keys: Sequence[tuple[str, bytes]], fpr: str, data: bytes) -> str:
    """ASCII-armored ciphertext of ``data`` for the key ``fpr`` (blocking)."""
    with _lock(home):
        sync_home(home, keys)
        gpg = _gpg(home)
        result = gpg.encrypt(data, [fpr], armor=True, always_trust=False)
    text = str(result)
    if not result.ok or not text.startswith("-----BEGIN PGP MESSAGE-----"):
        reason = (result.status or "").strip() or "no output"
        raise TransientError(f"gpg could not encrypt to {fpr}: {reason}")
    return text


def _encrypted_parts(armored: str) -> list[MIMEPart]:
    version = MIMEPart(policy=mime.SMTP)
    version["Content-Type"] = "application/pgp-encrypted"
    version["Content-Description"] = "PGP/MIME version identification"
    version.set_payload("Version: 1\r\n")
    body = MIMEPart(policy=mime.SMTP)
    body["Content-Type"] = 'application/octet-stream; name="encrypted.asc"'
    body["Content-Description"] = "OpenPGP encrypted message"
    body["Content-Disposition"] = 'inline; filename="encrypted.asc"'
    body.set_payload(armored)
    return [version, body]


def build_pgp_mime(outer: list[tuple[str, object]], armor: str) -> bytes:
    return mime.envelope(
        outer,
        'multipart/encrypted; protocol="application/pgp-encrypted"',
        _encrypted_parts(armor),
    )


async def _directory(services: Services, tenant_id: str, rcpt: str) -> tuple[list, str]:
    try:
        async with services.db.session() as s:
            mine = await usable_keys(s, tenant_id, rcpt, "pgp")
            every: Sequence[RecipientKey] = await list_keys(s, tenant_id)
    except SQLAlchemyError as exc:
        raise TransientError("key directory unavailable") from exc
    if not mine:
        raise TransientError(f"no usable OpenPGP key for {rcpt} in the tenant's directory")
    keys = [(k.fingerprint, k.material) for k in every if k.kind == "pgp"]
    return keys, mine[0].fingerprint


async def encrypt_pgp_mime(services: Services, tenant: Tenant, raw: bytes, rcpt: str) -> bytes:
    """``raw`` as a PGP/MIME message to ``rcpt``'s directory key; TransientError otherwise."""
    keys, fpr = await _directory(services, tenant.id, rcpt)
    home = home_for(services.settings.data_dir, tenant.id)
    outer, inner = mime.split(raw, protect=bool(tenant.pgp_protect_subject))
    plaintext = mime.to_bytes(inner)
    try:
        armored = await asyncio.to_thread(encrypt_in_home, home, keys, fpr, plaintext)
    except SealmailError:
        raise
    except Exception as exc:  # noqa: BLE001 - gnupg, OS: our failure, the message waits
        raise TransientError(f"OpenPGP encryption failed: {type(exc).__name__}") from exc
    return build_pgp_mime(outer, armored)


def encrypt_stream_in_home(
    home: Path, keys: Sequence[tuple[str, bytes]], fpr: str, chunks: Iterable[bytes], out: Path
) -> None:
    """:func:`encrypt_in_home` of a stream: gpg reads ``chunks`` on its standard input and
    writes the armored ciphertext to ``out`` (blocking)."""
    with _lock(home):
        sync_home(home, keys)
        gpg = _gpg(home)
        result = gpg.encrypt_file(
            ChunkReader(chunks), [fpr], armor=True, always_trust=False, output=str(out)
        )
    with open(out, "rb") as fh:
        start = fh.read(27)
    if not result.ok or start != b"-----BEGIN PGP MESSAGE-----":
        reason = (result.status or "").strip() or "no output"
        raise TransientError(f"gpg could not encrypt to {fpr}: {reason}")


async def encrypt_pgp_mime_large(
    services: Services, tenant: Tenant, source: LargeSource, rcpt: str
) -> Spooled:
    """:func:`encrypt_pgp_mime` of a large message: the entity streamed through gpg into
    a file in the tenant's GnuPG home (0700; ciphertext only), then the PGP/MIME message
    read from it as a stream. The caller closes the result (the file is removed)."""
    keys, fpr = await _directory(services, tenant.id, rcpt)
    home = home_for(services.settings.data_dir, tenant.id)
    entity = source.entity(protect=bool(tenant.pgp_protect_subject))
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=home, prefix="out-", suffix=".asc")
    os.close(fd)
    spooled = Spooled(lambda: iter(()), Path(name))
    try:
        await asyncio.to_thread(
            encrypt_stream_in_home, home, keys, fpr, entity.chunks(), Path(name)
        )
    except BaseException as exc:
        spooled.close()
        if isinstance(exc, SealmailError) or not isinstance(exc, Exception):
            raise
        raise TransientError(f"OpenPGP encryption failed: {type(exc).__name__}") from exc
    before, after = around_placeholder(build_pgp_mime(entity.outer, PLACEHOLDER + "\n"))

    def chunks() -> Iterator[bytes]:
        yield before
        yield from crlf_lines(read_file(Path(name)))
        yield after

    spooled.chunks = chunks
    return spooled


def _kill_agents(root: Path) -> None:
    if not root.is_dir() or shutil.which("gpgconf") is None:
        return
    for home in root.iterdir():
        if home.is_dir():
            subprocess.run(  # noqa: S603 - fixed argv
                ["gpgconf", "--homedir", str(home), "--kill", "all"],
                capture_output=True,
                check=False,
                timeout=30,
            )


async def stop_agents(data_dir: str | os.PathLike[str]) -> None:
    """Stop any gpg-agent/keyboxd of the tenants' homes (call when the worker stops)."""
    await asyncio.to_thread(_kill_agents, Path(data_dir) / "gnupg")
