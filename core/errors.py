"""The project's own exceptions; vendor errors are translated into these at package edges."""

from __future__ import annotations


class SealmailError(Exception):
    """Base class of every error sealmail raises on purpose."""


class ConfigError(SealmailError):
    """The configuration is invalid; the message is one line a person can act on."""


class TransientError(SealmailError):
    """Our own temporary failure (database, disk, storage, relay): retry later, reply 4xx."""


class PermanentError(SealmailError):
    """A failure about the message itself: bounce it, reply 5xx."""


class NotFound(SealmailError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class IntegrityError(SealmailError):
    """Stored ciphertext failed authentication: damaged or tampered with."""
