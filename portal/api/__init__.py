"""The JSON API for programs (``/api/v1``, bearer API keys scoped to one tenant) and the
billing system's webhook. Each module holds its handlers and its own OpenAPI path specs
(``PATHS``); :mod:`portal.api.openapi` assembles the document."""
