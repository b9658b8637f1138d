"""The running product's shared parts (:class:`Services`: settings, database, root key,
keyring, store, vault), opened once from the settings and handed to the gateway and the
portal (which meet only through these: database, outbox, archive). It lives in ``core``
because every layer names its type and the portal opens it in its lifespan."""

from __future__ import annotations

import dataclasses

from core.config.settings import Settings
from core.db import Database
from core.keyring import KeyRing
from core.rootkey.loader import open_root_key
from core.rootkey.protocol import RootKey
from core.storage.factory import open_store
from core.storage.interface import ObjectStore
from core.storage.local import LocalStore
from core.storage.vault import Vault


def store_from_settings(settings: Settings) -> ObjectStore:
    """The archive store the settings name (``archive_url``, ``s3_*``)."""
    return open_store(
        settings.archive_url,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        object_lock=settings.s3_object_lock,
    )


@dataclasses.dataclass
class Services:
    """The opened parts; :meth:`open` makes them from the settings."""

    settings: Settings
    db: Database
    root_key: RootKey
    keyring: KeyRing
    store: ObjectStore
    vault: Vault

    @classmethod
    def open(cls, settings: Settings, inline_db: bool = False) -> Services:
        """Load the root key and open the database and the store (no network calls).
        ``inline_db``: SQLite's statements run in the event loop's thread (a process whose
        loop serves no client: :class:`core.db._InlineConnection`)."""
        root = open_root_key(settings)
        keyring = KeyRing(root)
        store = store_from_settings(settings)
        if isinstance(store, LocalStore):
            store.create()
        db = Database(settings.database_url, inline=inline_db)
        vault = Vault(store, keyring, archive_retention=settings.archive_retention)
        return cls(settings, db, root, keyring, store, vault)

    def verify_store(self) -> None:
        """The start-up check of the archive (network for S3): :class:`ConfigError` with a
        one-line reason if the bucket is missing, not ours, or not set up for the
        configured Object Lock mode."""
        self.store.verify_setup()

    async def close(self) -> None:
        await self.db.dispose()
