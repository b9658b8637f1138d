"""The secure-message portal (HTTP): where a recipient proves control of the address with a
one-time code and reads the sealed message. Imports core, archive and branding, never the
gateway; the two meet through the database, the outbox and the archive."""

from portal.app import create_app

__all__ = ["create_app"]
