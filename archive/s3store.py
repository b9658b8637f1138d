"""The S3 object store: any S3-compatible bucket through boto3, behind :class:`ObjectStore`.

- Writes stream: the pieces are gathered into parts of ``part_size`` bytes; an object that
  ends before the first part is full goes up in one PutObject, a bigger one as a multipart
  upload that is aborted if anything fails (no dangling upload, no object). Memory is about
  two parts whatever the size of the object.
- Reads stream: ``open`` returns a file over the GetObject body; a connection lost midway
  is resumed with a ranged GET pinned to the same ETag.
- S3 Object Lock: with ``object_lock`` ``governance`` or ``compliance``, ``put(...,
  retain_until=T)`` writes the object with that mode and date, ``set_retention`` extends
  it (never shortens), and ``delete`` of a retained object raises :class:`ObjectLocked`.
- Errors: throttling and 5xx are retried by botocore (standard mode); what is left becomes
  :class:`TransientError` (network, 5xx, throttling, credentials, access denied: our own
  failure, so mail waits rather than bounces) or :class:`NotFound`; nothing from botocore
  leaves this module.
- No network call happens until the first operation: the client is made on first use.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import re
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import botocore.exceptions
import urllib3.exceptions
from botocore.config import Config

from archive.store import ObjectLocked, check_name
from core.aws import new_session
from core.errors import ConfigError, NotFound, SealmailError, TransientError

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's smallest part (all but the last)
LOCK_MODES = {"governance": "GOVERNANCE", "compliance": "COMPLIANCE"}

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_FOUND = {"NoSuchKey", "NotFound", "404", "NoSuchVersion"}
_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}
_NETWORK_ERRORS = (
    botocore.exceptions.ClientError,
    botocore.exceptions.BotoCoreError,
    urllib3.exceptions.HTTPError,
    OSError,
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")``."""
    rest = url[len("s3://") :] if url.startswith("s3://") else ""
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(f"archive_url {url!r}: expected s3://bucket/prefix with a valid bucket")
    return bucket, prefix.strip("/")


def _code(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(err.get("Code", "")), int(status or 0)


class S3Store:
    """Objects as ``<prefix>/<name>`` in one bucket."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str = "",
        region: str = "",
        object_lock: str = "off",
        part_size: int = DEFAULT_PART_SIZE,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        if object_lock not in ("off", *LOCK_MODES):
            raise ConfigError(
                f"s3_object_lock {object_lock!r}: expected off, governance or compliance"
            )
        if endpoint_url and not re.match(r"^https?://[^/\s]+/?$", endpoint_url):
            raise ConfigError(
                f"s3_endpoint_url {endpoint_url!r}: expected http(s)://host[:port] (or empty)"
            )
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.endpoint_url, self.region = endpoint_url, region
        self.object_lock = object_lock
        self.part_size = part_size
        self._max_attempts = max_attempts
        self._timeouts = (connect_timeout, read_timeout)
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3Store('s3://{self.bucket}/{self.prefix}'{where}, lock={self.object_lock})"

    # --- plumbing ------------------------------------------------------------------------

    def _client(self, kind: str = "main") -> Any:
        """A boto3 client, made on first use (thread-safe; clients are shared by threads).
        ``probe``: one attempt and short timeouts, for /readyz."""
        with self._lock:
            client = self._clients.get(kind)
            if client is None:
                probe = kind == "probe"
                attempts = 1 if probe else self._max_attempts
                config = Config(
                    retries={"total_max_attempts": attempts, "mode": "standard"},
                    connect_timeout=2.0 if probe else self._timeouts[0],
                    read_timeout=5.0 if probe else self._timeouts[1],
                    max_pool_connections=50,
                    s3={"addressing_style": "path"} if self.endpoint_url else None,
                )
                try:
                    client = new_session().client(
                        "s3",
                        endpoint_url=self.endpoint_url or None,
                        region_name=self.region or None,
                        config=config,
                    )
                except (botocore.exceptions.BotoCoreError, ValueError) as exc:
                    raise ConfigError(f"cannot set up the S3 archive client: {exc}") from None
                self._clients[kind] = client
            return client

    def key(self, name: str) -> str:
        check_name(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    def _error(self, exc: BaseException, what: str, name: str = "") -> SealmailError:
        """The project's error for a botocore/urllib3 failure of ``what``."""
        where = f"s3://{self.bucket}/{self.key(name)}" if name else f"s3://{self.bucket}"
        if isinstance(exc, botocore.exceptions.ClientError):
            code, status = _code(exc)
            if code == "NoSuchBucket":
                return TransientError(
                    f"archive {what} failed: bucket {self.bucket!r} does not exist"
                )
            if code in _NOT_FOUND or (status == 404 and name):
                return NotFound(f"object {name} not found")
            if code in _DENIED or status == 403:
                return TransientError(
                    f"archive {what} failed: access denied to {where} "
                    "(check the AWS credentials and the bucket policy)"
                )
            return TransientError(f"archive {what} failed: S3 said {code or status} for {where}")
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return TransientError(f"archive {what} failed: {detail}")

    def _lock_args(self, retain_until: float | None) -> dict[str, Any]:
        if self.object_lock == "off" or retain_until is None or retain_until <= time.time():
            return {}
        return {
            "ObjectLockMode": LOCK_MODES[self.object_lock],
            "ObjectLockRetainUntilDate": _when(retain_until),
        }

    # --- ObjectStore ---------------------------------------------------------------------

    def put(self, name: str, data: Iterable[bytes], retain_until: float | None = None) -> int:
        """Store ``data`` under ``name``; with Object Lock on, retained until ``retain_until``
        (unix seconds). Pieces are uploaded as they come, a part at a time."""
        key = self.key(name)
        lock = self._lock_args(retain_until)
        pieces = iter(data)
        buf = bytearray()
        size = 0
        for piece in pieces:
            buf += piece
            size += len(piece)
            if len(buf) >= self.part_size:
                return self._multipart(name, key, lock, buf, pieces, size)
        try:
            self._client().put_object(
                Bucket=self.bucket, Key=key, Body=bytes(buf), ContentLength=len(buf), **lock
            )
        except _NETWORK_ERRORS as exc:
            raise self._error(exc, "write", name) from exc
        return size

    def _multipart(
        self,
        name: str,
        key: str,
        lock: dict[str, Any],
        buf: bytearray,
        pieces: Iterator[bytes],
        size: int,
    ) -> int:
        client = self._client()
        try:
            upload = client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="CRC32", **lock
            )["UploadId"]
        except _NETWORK_ERRORS as exc:
            raise self._error(exc, "write", name) from exc
        parts: list[dict[str, Any]] = []
        try:

            def send(body: bytes) -> None:
                number = len(parts) + 1
                checksum = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
                r = client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumber=number,
                    Body=body,
                    ContentLength=len(body),
                    ChecksumCRC32=checksum,
                )
                parts.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumCRC32": checksum})

            while True:
                while len(buf) >= self.part_size:
                    with memoryview(buf) as view:
                        body = bytes(view[: self.part_size])  # one copy, not two
                    del buf[: self.part_size]
                    send(body)
                piece = next(pieces, None)
                if piece is None:
                    break
                buf += piece
                size += len(piece)
            if buf or not parts:
                send(bytes(buf))
            buf.clear()
            done = client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException as exc:
            try:
                client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            except _NETWORK_ERRORS:
                pass  # the bucket's lifecycle rule for incomplete uploads is the backstop
            if isinstance(exc, _NETWORK_ERRORS):
                raise self._error(exc, "write", name) from exc
            raise
        if lock:
            # Some S3-compatible services drop the lock headers of CreateMultipartUpload;
            # setting the same retention again on the new version is harmless on AWS.
            try:
                args = {"VersionId": done["VersionId"]} if done.get("VersionId") else {}
                client.put_object_retention(
                    Bucket=self.bucket,
                    Key=key,
                    Retention={
                        "Mode": lock["ObjectLockMode"],
                        "RetainUntilDate": lock["ObjectLockRetainUntilDate"],
                    },
                    **args,
                )
            except _NETWORK_ERRORS as exc:
                with contextlib.suppress(*_NETWORK_ERRORS):  # no unlocked copy left behind
                    client.delete_object(Bucket=self.bucket, Key=key, **args)
                raise self._error(exc, "write", name) from exc
        return size

    def open(self, name: str) -> BinaryIO:
        """A file over the object's body, read as the caller reads (bounded memory)."""
        key = self.key(name)
        try:
            r = self._client().get_object(Bucket=self.bucket, Key=key)
        except _NETWORK_ERRORS as exc:
            raise self._error(exc, "read", name) from exc
        raw = _BodyReader(self, name, key, r)
        return io.BufferedReader(raw, buffer_size=256 * 1024)  # type: ignore[return-value]

    def iter_bytes(self, name: str, size: int = MiB) -> Iterator[bytes]:
        with self.open(name) as fh:
            while piece := fh.read(size):
                yield piece

    def exists(self, name: str) -> bool:
        try:
            self._client().head_object(Bucket=self.bucket, Key=self.key(name))
            return True
        except _NETWORK_ERRORS as exc:
            err = self._error(exc, "read", name)
            if isinstance(err, NotFound):
                return False
            raise err from exc

    def delete(self, name: str) -> None:
        """Remove every version of the object (a plain DeleteObject on a versioned bucket
        would only hide it). A version under Object Lock retention raises
        :class:`ObjectLocked`; deleting what is not there is fine."""
        key = self.key(name)
        client = self._client()
        try:
            versions: list[dict[str, Any]] = []
            for page in client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=key
            ):
                for v in (*page.get("Versions", ()), *page.get("DeleteMarkers", ())):
                    if v["Key"] == key:
                        versions.append(v)
            for v in versions:
                try:
                    client.delete_object(Bucket=self.bucket, Key=key, VersionId=v["VersionId"])
                except botocore.exceptions.ClientError as exc:
                    code, status = _code(exc)
                    if self.object_lock != "off" and (code in _DENIED or status == 403):
                        raise ObjectLocked(
                            f"object {name} is under S3 Object Lock retention"
                            f"{self._until_text(name)}: it cannot be deleted before then"
                        ) from None
                    raise
        except _NETWORK_ERRORS as exc:
            raise self._error(exc, "delete", name) from exc

    def _until_text(self, name: str) -> str:
        until = self.retained_until(name)
        if until is None:
            return ""
        return " until " + dt.datetime.fromtimestamp(until, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def retained_until(self, name: str) -> float | None:
        """The Object Lock date of the current version (unix seconds), if any."""
        try:
            head = self._client().head_object(Bucket=self.bucket, Key=self.key(name))
        except _NETWORK_ERRORS as exc:
            raise self._error(exc, "read", name) from exc
        until = head.get("ObjectLockRetainUntilDate")
        return until.timestamp() if until is not None else None

    def set_retention(self, name: str, until: float) -> None:
        """Extend the object's retention to ``until`` (never shortens it; a no-op with
        Object Lock off)."""
        if self.object_lock == "off":
            return
        key = self.key(name)
        client = self._client()
        try:
            head = client.head_object(Bucket=self.bucket, Key=key)
            current = head.get("ObjectLockRetainUntilDate")
            if current is not None and current.timestamp() >= until:
                return
            mode = head.get("ObjectLockMode") or LOCK_MODES[self.object_lock]
            args = {"VersionId": head["VersionId"]} if head.get("VersionId") else {}
            client.put_object_retention(
                Bucket=self.bucket,
                Key=key,
                Retention={"Mode": mode, "RetainUntilDate": _when(until)},
                **args,
            )
        except _NETWORK_ERRORS as exc:
            raise self._error(exc, "retention update", name) from exc

    def check(self) -> None:
        """Cheap readiness probe: HeadBucket, one attempt."""
        try:
            self._client("probe").head_bucket(Bucket=self.bucket)
        except _NETWORK_ERRORS as exc:
            raise self._error(exc, "check") from exc

    def verify_setup(self) -> None:
        """At start-up: the bucket exists, we may use it, and it is set up for the
        configured Object Lock mode. Raises :class:`ConfigError` with one line."""
        client = self._client()
        b = self.bucket
        try:
            client.head_bucket(Bucket=b)
        except botocore.exceptions.ClientError as exc:
            code, status = _code(exc)
            if status == 404 or code in ("NoSuchBucket", "404", "NotFound"):
                raise ConfigError(f"archive bucket {b!r} does not exist") from None
            if status == 403 or code in _DENIED:
                raise ConfigError(
                    f"no access to archive bucket {b!r}: check the AWS credentials and "
                    "the bucket policy"
                ) from None
            raise ConfigError(f"archive bucket {b!r}: S3 said {code or status}") from None
        except _NETWORK_ERRORS as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"cannot reach the archive bucket {b!r}: {detail}") from None
        if self.object_lock == "off":
            return
        try:
            conf = client.get_object_lock_configuration(Bucket=b).get("ObjectLockConfiguration", {})
            enabled = conf.get("ObjectLockEnabled") == "Enabled"
            versioning = client.get_bucket_versioning(Bucket=b).get("Status")
        except botocore.exceptions.ClientError as exc:
            code, status = _code(exc)
            if code != "ObjectLockConfigurationNotFoundError":
                raise ConfigError(
                    f"cannot read the Object Lock setup of archive bucket {b!r}: "
                    f"S3 said {code or status}"
                ) from None
            enabled, versioning = False, None
        except _NETWORK_ERRORS as exc:
            raise ConfigError(f"cannot reach the archive bucket {b!r}: {exc}") from None
        if not enabled:
            raise ConfigError(
                f"s3_object_lock = {self.object_lock!r} but archive bucket {b!r} has no "
                "Object Lock enabled: create the bucket with Object Lock (or set "
                "s3_object_lock = 'off')"
            )
        if versioning != "Enabled":
            raise ConfigError(
                f"s3_object_lock = {self.object_lock!r} but versioning is off on archive "
                f"bucket {b!r}: Object Lock needs versioning enabled"
            )


def _when(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, dt.UTC)


class _BodyReader(io.RawIOBase):
    """The GetObject body as a raw file; a dropped connection resumes once or twice with
    a ranged GET of the same version (If-Match on the ETag), errors become ours."""

    RESUMES = 3

    def __init__(self, store: S3Store, name: str, key: str, response: dict[str, Any]) -> None:
        self._store, self._name, self._key = store, name, key
        self._body = response["Body"]
        self._etag = response.get("ETag")
        self._length = int(response.get("ContentLength", 0))
        self._pos = 0
        self._resumes = self.RESUMES

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._pos >= self._length or len(view) == 0:
            return 0
        while True:
            try:
                data = self._body.read(len(view))
                break
            except _NETWORK_ERRORS as exc:
                if self._resumes <= 0:
                    raise self._store._error(exc, "read", self._name) from exc
                self._resumes -= 1
                self._reopen()
        n = len(data)
        view[:n] = data
        self._pos += n
        return n

    def _reopen(self) -> None:
        with contextlib.suppress(Exception):
            self._body.close()
        args = {"IfMatch": self._etag} if self._etag else {}
        try:
            r = self._store._client().get_object(
                Bucket=self._store.bucket, Key=self._key, Range=f"bytes={self._pos}-", **args
            )
        except _NETWORK_ERRORS as exc:
            raise self._store._error(exc, "read", self._name) from exc
        self._body = r["Body"]

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()
