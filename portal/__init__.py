"""The secure-message portal (HTTP): where a recipient proves control of the address with a
one-time code and reads the sealed message, senders see what they sent, a tenant's admins
decide the quarantine, and programs use the JSON API. One area per kind of user (``reader/``,
``sent/``, ``admin/``, ``api/``, support), one route table (:mod:`portal.routes`), the app in
:mod:`portal.app`. Imports core, archive and branding, never the gateway; the two meet
through the database, the outbox and the archive."""
