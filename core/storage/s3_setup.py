"""The start-up check of the S3 store: the bucket exists, we may use it, and it is set up
for the configured Object Lock mode (Object Lock and versioning enabled). Every failure is
a one-line :class:`ConfigError`."""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from core.errors import ConfigError
from core.storage.s3_errors import DENIED_CODES, NETWORK_ERRORS, error_code


def verify_bucket(client: Any, bucket: str, object_lock: str) -> None:
    """Raise :class:`ConfigError` with one line if ``bucket`` is missing, not ours, or not
    set up for ``object_lock`` (``off``, ``governance`` or ``compliance``)."""
    b = bucket
    try:
        client.head_bucket(Bucket=b)
    except botocore.exceptions.ClientError as exc:
        code, status = error_code(exc)
        if status == 404 or code in ("NoSuchBucket", "404", "NotFound"):
            raise ConfigError(f"archive bucket {b!r} does not exist") from None
        if status == 403 or code in DENIED_CODES:
            raise ConfigError(
                f"no access to archive bucket {b!r}: check the AWS credentials and "
                "the bucket policy"
            ) from None
        raise ConfigError(f"archive bucket {b!r}: S3 said {code or status}") from None
    except NETWORK_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot reach the archive bucket {b!r}: {detail}") from None
    if object_lock == "off":
        return
    try:
        conf = client.get_object_lock_configuration(Bucket=b).get("ObjectLockConfiguration", {})
        enabled = conf.get("ObjectLockEnabled") == "Enabled"
        versioning = client.get_bucket_versioning(Bucket=b).get("Status")
    except botocore.exceptions.ClientError as exc:
        code, status = error_code(exc)
        if code != "ObjectLockConfigurationNotFoundError":
            raise ConfigError(
                f"cannot read the Object Lock setup of archive bucket {b!r}: "
                f"S3 said {code or status}"
            ) from None
        enabled, versioning = False, None
    except NETWORK_ERRORS as exc:
        raise ConfigError(f"cannot reach the archive bucket {b!r}: {exc}") from None
    if not enabled:
        raise ConfigError(
            f"s3_object_lock = {object_lock!r} but archive bucket {b!r} has no "
            "Object Lock enabled: create the bucket with Object Lock (or set "
            "s3_object_lock = 'off')"
        )
    if versioning != "Enabled":
        raise ConfigError(
            f"s3_object_lock = {object_lock!r} but versioning is off on archive "
            f"bucket {b!r}: Object Lock needs versioning enabled"
        )
