"""A KMS root's derivation secret, kept in the database (table ``kms_derivation_secrets``).

The secret (32 random bytes, the input of ``RootKey.derive``) is wrapped by the root key in
KMS with associated data ``sealmail/derive/v1``. Keeping it in the database instead of a
file in ``data_dir`` means several hosts sharing one PostgreSQL derive the same purpose
keys with nothing copied between them.

``sealmail init`` and ``sealmail migrate`` create it (:func:`ensure`); an install that
still has the older ``<data_dir>/keys/kms-root.derive`` file has that file imported instead
(once, by whichever process first finds the row missing); ``sealmail key rotate`` re-wraps
the row (:func:`save`). Every other process reads it on first use (:func:`load_blocking`).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from core.aead import new_key
from core.db import Database
from core.errors import ConfigError, IntegrityError, SealmailError, TransientError
from core.models import KmsDerivationSecret, now
from core.private_files import read_private
from core.rootkey.protocol import DERIVE_AAD

if TYPE_CHECKING:
    from core.rootkey.kms_root import KmsRootKey

ROW_NAME = "root"


def _db_error(exc: BaseException) -> SealmailError:
    text = f"{exc} {exc.__cause__}".lower()
    if "no such table" in text or "does not exist" in text or "undefinedtable" in text:
        return ConfigError(
            "the database has no table for the KMS derivation secret: run 'sealmail migrate'"
        )
    return TransientError(f"database unavailable: {type(exc).__name__}")


async def read(db: Database) -> bytes | None:
    """The wrapped secret, or ``None`` if the database has none yet."""
    try:
        async with db.session() as s:
            row = await s.get(KmsDerivationSecret, ROW_NAME)
            return bytes(row.wrapped_secret) if row is not None else None
    except (SQLAlchemyError, TransientError) as exc:
        raise _db_error(exc) from None


async def save(db: Database, wrapped: bytes, root_key_id: str) -> None:
    """Store ``wrapped`` (the secret re-wrapped by a rotation), replacing the row."""
    try:
        async with db.session() as s:
            row = await s.get(KmsDerivationSecret, ROW_NAME)
            if row is None:
                s.add(
                    KmsDerivationSecret(
                        name=ROW_NAME, wrapped_secret=wrapped, root_key_id=root_key_id
                    )
                )
            else:
                row.wrapped_secret = wrapped
                row.root_key_id = root_key_id
                row.updated_at = now()
            await s.commit()
    except SQLAlchemyError as exc:
        raise _db_error(exc) from None


async def _insert_once(db: Database, wrapped: bytes, root_key_id: str) -> bool:
    """Insert the row unless another process did first; ``True`` if ours went in."""
    try:
        async with db.session() as s:
            s.add(
                KmsDerivationSecret(name=ROW_NAME, wrapped_secret=wrapped, root_key_id=root_key_id)
            )
            await s.commit()
        return True
    except DbIntegrityError:
        return False
    except SQLAlchemyError as exc:
        raise _db_error(exc) from None


def _legacy_blob(root: KmsRootKey, legacy_file: Path | None) -> tuple[bytes, str] | None:
    """The older file's wrapped secret and the ``aws-kms:<arn>`` that wraps it, checked to
    open through KMS; ``None`` if there is no file."""
    if legacy_file is None or not legacy_file.exists():
        return None
    blob = read_private(legacy_file, "derivation secret")
    try:
        if blob[:1] != b"\x81":
            raise IntegrityError("not a KMS ciphertext")
        return blob, root.wrapped_by(blob, DERIVE_AAD)
    except (IntegrityError, ConfigError) as exc:
        raise ConfigError(
            f"derivation secret {legacy_file} does not open with {root.uri} ({exc})"
        ) from None


async def ensure(db: Database, root: KmsRootKey, legacy_file: Path | None = None) -> str | None:
    """Make sure the database holds the secret: ``"imported"`` (from ``legacy_file``),
    ``"created"`` (new random secret wrapped by ``root``) or ``None`` (already there)."""
    if await read(db) is not None:
        return None
    key_id = await asyncio.to_thread(lambda: root.key_id)  # DescribeKey: a missing key fails here
    legacy = await asyncio.to_thread(_legacy_blob, root, legacy_file)
    if legacy is not None:
        return "imported" if await _insert_once(db, *legacy) else None
    blob = await asyncio.to_thread(root.wrap, new_key(), DERIVE_AAD)
    return "created" if await _insert_once(db, blob, key_id) else None


async def _load(url: str, root: KmsRootKey, legacy_file: Path | None) -> bytes:
    db = Database(url)
    try:
        blob = await read(db)
        if blob is None:
            legacy = await asyncio.to_thread(_legacy_blob, root, legacy_file)
            if legacy is not None:
                await _insert_once(db, *legacy)
            blob = await read(db)
        if blob is None:
            raise ConfigError(
                f"no derivation secret for root key {root.uri} in the database: run "
                f"'sealmail migrate' (or 'sealmail init') once with this root key"
            )
        return blob
    finally:
        await db.dispose()


def load_blocking(url: str, root: KmsRootKey, legacy_file: Path | None = None) -> bytes:
    """:func:`read` for synchronous callers, importing ``legacy_file`` if the database has
    no secret yet. Runs its own event loop in a helper thread, so it may be called from a
    thread that is running one (once per process: the root key caches the secret)."""
    result: list[bytes] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(_load(url, root, legacy_file)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            error.append(exc)

    t = threading.Thread(target=run, name="kms-derivation-secret", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]
