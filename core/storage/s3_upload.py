"""The multipart upload of the S3 store: parts of ``part_size`` bytes sent as the pieces
come (memory about two parts whatever the size), CRC32 per part, the upload aborted if
anything fails (no dangling upload, no object), and the Object Lock date set again on the
finished object."""

from __future__ import annotations

import base64
import contextlib
import zlib
from collections.abc import Iterator
from typing import Any

from core.storage.s3_errors import NETWORK_ERRORS, ErrorOf


def multipart_upload(
    client: Any,
    bucket: str,
    key: str,
    lock: dict[str, Any],
    buf: bytearray,
    pieces: Iterator[bytes],
    size: int,
    part_size: int,
    error: ErrorOf,
) -> int:
    """Upload ``buf`` (at least one part already) and the rest of ``pieces`` as one object;
    return the total byte count. ``lock``: the Object Lock arguments, or empty."""
    try:
        upload = client.create_multipart_upload(
            Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32", **lock
        )["UploadId"]
    except NETWORK_ERRORS as exc:
        raise error(exc) from exc
    parts: list[dict[str, Any]] = []
    try:

        def send(body: bytes) -> None:
            number = len(parts) + 1
            checksum = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
            r = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload,
                PartNumber=number,
                Body=body,
                ContentLength=len(body),
                ChecksumCRC32=checksum,
            )
            parts.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumCRC32": checksum})

        while True:
            while len(buf) >= part_size:
                with memoryview(buf) as view:
                    body = bytes(view[:part_size])  # one copy, not two
                del buf[:part_size]
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
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
    except BaseException as exc:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        except NETWORK_ERRORS:
            pass  # the bucket's lifecycle rule for incomplete uploads is the backstop
        if isinstance(exc, NETWORK_ERRORS):
            raise error(exc) from exc
        raise
    if lock:
        # Some S3-compatible services drop the lock headers of CreateMultipartUpload;
        # setting the same retention again on the new version is harmless on AWS.
        try:
            args = {"VersionId": done["VersionId"]} if done.get("VersionId") else {}
            client.put_object_retention(
                Bucket=bucket,
                Key=key,
                Retention={
                    "Mode": lock["ObjectLockMode"],
                    "RetainUntilDate": lock["ObjectLockRetainUntilDate"],
                },
                **args,
            )
        except NETWORK_ERRORS as exc:
            with contextlib.suppress(*NETWORK_ERRORS):  # no unlocked copy left behind
                client.delete_object(Bucket=bucket, Key=key, **args)
            raise error(exc) from exc
    return size
