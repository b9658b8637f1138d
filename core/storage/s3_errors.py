"""Where botocore's errors become the project's: a failure of the S3 store is a
:class:`TransientError` (network, 5xx, throttling, credentials, access denied: our own
failure, so mail waits rather than bounces) or :class:`NotFound`; nothing from botocore
leaves the S3 modules."""

from __future__ import annotations

from collections.abc import Callable

import botocore.exceptions
import urllib3.exceptions

from core.errors import NotFound, SealmailError, TransientError

NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404", "NoSuchVersion"}
DENIED_CODES = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}
NETWORK_ERRORS = (
    botocore.exceptions.ClientError,
    botocore.exceptions.BotoCoreError,
    urllib3.exceptions.HTTPError,
    OSError,
)

ErrorOf = Callable[[BaseException], SealmailError]
"""Turns a failure of one operation on one object into the project's error."""


def error_code(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a botocore ``ClientError``."""
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(err.get("Code", "")), int(status or 0)


def project_error(
    exc: BaseException, what: str, bucket: str, where: str, name: str = ""
) -> SealmailError:
    """The project's error for a botocore/urllib3 failure of ``what`` on ``where`` (the
    bucket, or the object ``name`` in it)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code, status = error_code(exc)
        if code == "NoSuchBucket":
            return TransientError(f"archive {what} failed: bucket {bucket!r} does not exist")
        if code in NOT_FOUND_CODES or (status == 404 and name):
            return NotFound(f"object {name} not found")
        if code in DENIED_CODES or status == 403:
            return TransientError(
                f"archive {what} failed: access denied to {where} "
                "(check the AWS credentials and the bucket policy)"
            )
        return TransientError(f"archive {what} failed: S3 said {code or status} for {where}")
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return TransientError(f"archive {what} failed: {detail}")
