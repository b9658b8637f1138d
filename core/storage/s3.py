"""The S3 object store: any S3-compatible bucket through boto3, behind :class:`ObjectStore`.

- Writes stream: the pieces are gathered into parts of ``part_size`` bytes; an object that
  ends before the first part is full goes up in one PutObject, a bigger one as a multipart
  upload (:mod:`core.storage.s3_upload`) that is aborted if anything fails (no dangling
  upload, no object). Memory is about two parts whatever the size of the object.
- Reads stream: ``open`` returns a file over the GetObject body; a connection lost midway
  is resumed with a ranged GET pinned to the same ETag (:mod:`core.storage.s3_reader`).
- S3 Object Lock: with ``object_lock`` ``governance`` or ``compliance``, ``put(...,
  retain_until=T)`` writes the object with that mode and date, ``set_retention`` extends
  it (never shortens), and ``delete`` of a retained object raises :class:`ObjectLocked`.
- Errors: throttling and 5xx are retried by botocore (standard mode); what is left becomes
  :class:`TransientError` (network, 5xx, throttling, credentials, access denied: our own
  failure, so mail waits rather than bounces) or :class:`NotFound`
  (:mod:`core.storage.s3_errors`); nothing from botocore leaves the S3 modules.
- No network call happens until the first operation: the client is made on first use.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import botocore.exceptions
from botocore.config import Config

from core.aws import new_session
from core.errors import ConfigError, NotFound, SealmailError
from core.storage.interface import ObjectLocked, check_name
from core.storage.s3_errors import DENIED_CODES, NETWORK_ERRORS, error_code, project_error
from core.storage.s3_reader import ResumingBody
from core.storage.s3_setup import verify_bucket
from core.storage.s3_upload import multipart_upload

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's smallest part (all but the last)
LOCK_MODES = {"governance": "GOVERNANCE", "compliance": "COMPLIANCE"}

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")``."""
    rest = url[len("s3://") :] if url.startswith("s3://") else ""
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(f"archive_url {url!r}: expected s3://bucket/prefix with a valid bucket")
    return bucket, prefix.strip("/")


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
        return project_error(exc, what, self.bucket, where, name)

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
                return multipart_upload(
                    self._client(),
                    self.bucket,
                    key,
                    lock,
                    buf,
                    pieces,
                    size,
                    self.part_size,
                    lambda exc: self._error(exc, "write", name),
                )
        try:
            self._client().put_object(
                Bucket=self.bucket, Key=key, Body=bytes(buf), ContentLength=len(buf), **lock
            )
        except NETWORK_ERRORS as exc:
            raise self._error(exc, "write", name) from exc
        return size

    def open(self, name: str) -> BinaryIO:
        """A file over the object's body, read as the caller reads (bounded memory)."""
        key = self.key(name)
        try:
            r = self._client().get_object(Bucket=self.bucket, Key=key)
        except NETWORK_ERRORS as exc:
            raise self._error(exc, "read", name) from exc

        def ranged_get(offset: int, args: dict[str, Any]) -> dict[str, Any]:
            return self._client().get_object(  # type: ignore[no-any-return]
                Bucket=self.bucket, Key=key, Range=f"bytes={offset}-", **args
            )

        raw = ResumingBody(r, ranged_get, lambda exc: self._error(exc, "read", name))
        return io.BufferedReader(raw, buffer_size=256 * 1024)  # type: ignore[return-value]

    def iter_bytes(self, name: str, size: int = MiB) -> Iterator[bytes]:
        with self.open(name) as fh:
            while piece := fh.read(size):
                yield piece

    def exists(self, name: str) -> bool:
        try:
            self._client().head_object(Bucket=self.bucket, Key=self.key(name))
            return True
        except NETWORK_ERRORS as exc:
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
                    code, status = error_code(exc)
                    if self.object_lock != "off" and (code in DENIED_CODES or status == 403):
                        raise ObjectLocked(
                            f"object {name} is under S3 Object Lock retention"
                            f"{self._until_text(name)}: it cannot be deleted before then"
                        ) from None
                    raise
        except NETWORK_ERRORS as exc:
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
        except NETWORK_ERRORS as exc:
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
        except NETWORK_ERRORS as exc:
            raise self._error(exc, "retention update", name) from exc

    def check(self) -> None:
        """Cheap readiness probe: HeadBucket, one attempt."""
        try:
            self._client("probe").head_bucket(Bucket=self.bucket)
        except NETWORK_ERRORS as exc:
            raise self._error(exc, "check") from exc

    def verify_setup(self) -> None:
        """At start-up: the bucket exists, we may use it, and it is set up for the
        configured Object Lock mode. Raises :class:`ConfigError` with one line."""
        verify_bucket(self._client(), self.bucket, self.object_lock)


def _when(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, dt.UTC)
