"""Encryption to recipients' own keys: OpenPGP (PGP/MIME, :mod:`.pgp`) and S/MIME
(:mod:`.smime`). Both fail closed: any failure raises ``TransientError`` (the message waits,
then bounces at ``queue_lifetime``); neither ever returns clear text."""
