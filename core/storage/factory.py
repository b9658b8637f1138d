"""Open the store the ``archive_url`` setting names: the one place that knows every
backend (the backends never import it). The S3 backend is imported only when named, so a
process on a local store never loads boto3."""

from __future__ import annotations

from core.errors import ConfigError
from core.storage.interface import ObjectStore
from core.storage.local import LocalStore


def open_store(
    archive_url: str, *, endpoint_url: str = "", region: str = "", object_lock: str = "off"
) -> ObjectStore:
    """The store named by the ``archive_url`` setting (no network call: an S3 client is
    made on first use)."""
    if archive_url.startswith("file://"):
        return LocalStore(archive_url[len("file://") :])
    if archive_url.startswith("s3://"):
        from core.storage.s3 import S3Store, parse_s3_url

        bucket, prefix = parse_s3_url(archive_url)
        return S3Store(
            bucket, prefix, endpoint_url=endpoint_url, region=region, object_lock=object_lock
        )
    raise ConfigError(f"archive_url {archive_url!r}: expected file:// or s3://")
