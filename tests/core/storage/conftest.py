"""The storage suite runs on both stores: every test here that uses ``settings``,
``services`` or ``store`` runs once on the local disk and once on a real S3 HTTP endpoint
(moto's server on loopback, a fresh bucket per test), on SQLite and on PostgreSQL."""

from tests.helpers.stores import (  # noqa: F401 - fixtures
    aws_env,
    bucket,
    settings,
    store,
    store_kind,
)
