"""The running product's shared parts, opened once from the settings and handed to the
gateway and the portal (which meet only through these: database, outbox, archive)."""

from __future__ import annotations

import dataclasses

from archive.store import LocalStore, ObjectStore, open_store
from archive.vault import Vault
from core.config import Settings
from core.db import Database
from core.keyring import KeyRing
from core.keys import RootKey, open_root_key


@dataclasses.dataclass
class Services:
    settings: Settings
    db: Database
    root_key: RootKey
    keyring: KeyRing
    store: ObjectStore
    vault: Vault

    @classmethod
    def open(cls, settings: Settings) -> Services:
        """Load the root key and open the database and the store (no network calls)."""
        root = open_root_key(settings)
        keyring = KeyRing(root)
        store = open_store(settings.archive_url)
        if isinstance(store, LocalStore):
            store.create()
        db = Database(settings.database_url)
        return cls(settings, db, root, keyring, store, Vault(store, keyring))

    async def close(self) -> None:
        await self.db.dispose()
