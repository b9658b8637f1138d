"""The S3 store's own behaviour on a real S3 HTTP endpoint (moto's server on loopback):
Object Lock checked through the S3 API, errors translated, start-up checks, memory."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import botocore.exceptions
import pytest

from core.accounts.tenants import create_tenant
from core.errors import ConfigError, NotFound, TransientError
from core.services import Services
from core.storage.interface import ObjectLocked
from core.storage.s3 import S3Store
from tests.conftest import make_settings
from tests.helpers.moto_server import MotoServer
from tests.helpers.stores import empty_bucket, new_bucket, s3_client

ROOT = Path(__file__).resolve().parents[3]
DAY = 86400.0


@pytest.fixture
def lock_bucket(moto_server: MotoServer) -> Iterator[str]:
    name = new_bucket(moto_server.endpoint, lock=True)
    yield name
    empty_bucket(moto_server.endpoint, name)


def locked_store(server: MotoServer, bucket: str, mode: str) -> S3Store:
    return S3Store(
        bucket, "archive", endpoint_url=server.endpoint, object_lock=mode, part_size=5 << 20
    )


@pytest.mark.parametrize("mode", ["compliance", "governance"])
@pytest.mark.parametrize("size", [1000, 11 << 20], ids=["put", "multipart"])
def test_locked_object_cannot_be_deleted_before_its_date(
    moto_server: MotoServer, lock_bucket: str, mode: str, size: int
) -> None:
    store = locked_store(moto_server, lock_bucket, mode)
    until = time.time() + DAY
    store.put("o_locked1", [b"\x01" * size], retain_until=until)

    client = s3_client(moto_server.endpoint)
    head = client.head_object(Bucket=lock_bucket, Key="archive/o_locked1")
    assert head["ObjectLockMode"] == mode.upper()
    assert abs(head["ObjectLockRetainUntilDate"].timestamp() - until) < 2
    # through the S3 API: deleting that very version is refused
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        client.delete_object(
            Bucket=lock_bucket, Key="archive/o_locked1", VersionId=head["VersionId"]
        )
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    # through the store: a clear error naming the date, and the object is still whole
    with pytest.raises(ObjectLocked, match=r"o_locked1 is under S3 Object Lock retention until 20"):
        store.delete("o_locked1")
    with store.open("o_locked1") as fh:
        assert len(fh.read()) == size

    # extending works and is seen through the API; a shorter date never shortens it
    store.set_retention("o_locked1", until + DAY)
    store.set_retention("o_locked1", until)
    head = client.head_object(Bucket=lock_bucket, Key="archive/o_locked1")
    assert abs(head["ObjectLockRetainUntilDate"].timestamp() - (until + DAY)) < 2
    assert abs(store.retained_until("o_locked1") - (until + DAY)) < 2  # type: ignore[operator]


def test_object_without_a_date_is_not_locked(moto_server: MotoServer, lock_bucket: str) -> None:
    store = locked_store(moto_server, lock_bucket, "compliance")
    store.put("o_free001", [b"portal copy"])  # no retain_until (portal copies, parts)
    store.put("o_past001", [b"old"], retain_until=time.time() - 10)  # already past
    assert store.retained_until("o_free001") is None
    store.delete("o_free001")
    store.delete("o_past001")
    client = s3_client(moto_server.endpoint)
    assert client.list_object_versions(Bucket=lock_bucket).get("Versions", []) == []


async def test_vault_locks_archive_copies_for_archive_retention(
    tmp_path: Path, db_url: str, moto_server: MotoServer, lock_bucket: str
) -> None:
    settings = make_settings(
        tmp_path,
        db_url,
        archive_url=f"s3://{lock_bucket}/a",
        s3_endpoint_url=moto_server.endpoint,
        s3_object_lock="compliance",
        archive_retention="30d",
    )
    svc = Services.open(settings)
    try:
        svc.verify_store()
        async with svc.db.session() as s:
            creds = await create_tenant(s, svc.keyring, "Acme", ["acme.example"])
            raw = await svc.vault.seal(s, creds.tenant_id, b"original", "raw")
            part = await svc.vault.seal(s, creds.tenant_id, b"portal part", "part")
            held = await svc.vault.seal(
                s, creds.tenant_id, b"x", "outbound", retain_until=time.time() + 2 * DAY
            )
            await s.commit()
    finally:
        await svc.close()
    client = s3_client(moto_server.endpoint)
    heads = {
        o.kind: client.head_object(Bucket=lock_bucket, Key=f"a/{o.storage_name}")
        for o in (raw, part, held)
    }
    assert heads["raw"]["ObjectLockMode"] == "COMPLIANCE"
    assert abs(heads["raw"]["ObjectLockRetainUntilDate"].timestamp() - time.time() - 30 * DAY) < 60
    assert "ObjectLockMode" not in heads["part"]
    assert (
        abs(heads["outbound"]["ObjectLockRetainUntilDate"].timestamp() - time.time() - 2 * DAY) < 60
    )


def test_missing_key_is_not_found(moto_server: MotoServer, bucket: str) -> None:
    store = S3Store(bucket, "p", endpoint_url=moto_server.endpoint)
    with pytest.raises(NotFound, match="o_nothere"):
        store.open("o_nothere")
    assert not store.exists("o_nothere")
    store.delete("o_nothere")  # nothing to delete is fine
    with pytest.raises(NotFound):
        store.retained_until("o_nothere")


def test_endpoint_down_is_transient(aws_env: None) -> None:
    server = MotoServer().start()
    try:
        s3_client(server.endpoint).create_bucket(Bucket="t-down")
        store = S3Store("t-down", "", endpoint_url=server.endpoint, max_attempts=2)
        store.put("o_before1", [b"x"])
        store.check()
    finally:
        server.stop()
    for call in (
        lambda: store.put("o_after01", [b"y"]),
        lambda: store.put("o_after02", iter([b"z" * (6 << 20)] * 2)),
        lambda: store.open("o_before1"),
        lambda: store.exists("o_before1"),
        lambda: store.delete("o_before1"),
        store.check,
    ):
        with pytest.raises(TransientError, match="archive .* failed: Could not connect") as err:
            call()
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="cannot reach the archive bucket 't-down'"):
        store.verify_setup()


class _Forbidden(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request 403 AccessDenied (wrong credentials)."""

    def _deny(self) -> None:
        body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)) if self.command != "HEAD" else "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _deny

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def forbidden_endpoint(aws_env: None) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_access_denied_is_a_clear_error(forbidden_endpoint: str) -> None:
    store = S3Store("t-theirs", "p", endpoint_url=forbidden_endpoint, max_attempts=1)
    with pytest.raises(TransientError, match="access denied to s3://t-theirs/p/o_x1.*credentials"):
        store.put("o_x1", [b"x"])
    with pytest.raises(TransientError, match="access denied"):
        store.open("o_x1")
    with pytest.raises(ConfigError, match="^no access to archive bucket 't-theirs'"):
        store.verify_setup()


def test_start_up_checks(moto_server: MotoServer, bucket: str, lock_bucket: str) -> None:
    def check(name: str, lock: str) -> None:
        S3Store(name, "", endpoint_url=moto_server.endpoint, object_lock=lock).verify_setup()

    check(bucket, "off")
    check(lock_bucket, "compliance")
    check(lock_bucket, "governance")
    with pytest.raises(ConfigError, match="^archive bucket 't-nosuchbucket' does not exist$"):
        check("t-nosuchbucket", "off")
    with pytest.raises(ConfigError, match=f"bucket '{bucket}' has no Object Lock enabled"):
        check(bucket, "compliance")
    s3_client(moto_server.endpoint).put_bucket_versioning(
        Bucket=lock_bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    with pytest.raises(ConfigError, match=f"versioning is off on archive bucket '{lock_bucket}'"):
        check(lock_bucket, "compliance")


_MEMORY_PROBE = textwrap.dedent(
    """
    import hashlib, os, sys
    sys.path.insert(0, sys.argv[1])
    from core.storage.s3 import S3Store

    def status(field):  # kB -> MB, from /proc/self/status
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

    def reset_peak():  # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status("VmRSS")

    store = S3Store(sys.argv[3], "mem", endpoint_url=sys.argv[2])
    store.put("o_warmup", [b"w" * 1000])  # client made, connections open
    with store.open("o_warmup") as fh:
        fh.read()
    total, piece = 200 * 1024 * 1024, os.urandom(64 * 1024)
    base = reset_peak()
    written = store.put("o_200mb", (piece for _ in range(total // len(piece))))
    put_growth = status("VmHWM") - base
    base = reset_peak()
    h, n = hashlib.sha256(), 0
    with store.open("o_200mb") as fh:
        while chunk := fh.read(64 * 1024):
            n += len(chunk)
            h.update(chunk)
    expect = hashlib.sha256()
    for _ in range(total // len(piece)):
        expect.update(piece)
    read_growth = status("VmHWM") - base
    print(written, n, h.hexdigest() == expect.hexdigest(), put_growth, read_growth)
    """
)


def test_200_mb_object_in_bounded_memory(moto_server: MotoServer, bucket: str) -> None:
    """Written and read through the S3 store in a fresh process: peak RSS (VmHWM, reset
    before each half) grows by well under 100 MB (parts of 8 MiB; reads as the caller
    reads)."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(ROOT), moto_server.endpoint, bucket],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout.split()
    written, read, same, put_growth, read_growth = out
    assert int(written) == int(read) == 200 * 1024 * 1024
    assert same == "True"
    assert float(put_growth) < 60, f"peak RSS grew {put_growth} MB while writing"
    assert float(read_growth) < 60, f"peak RSS grew {read_growth} MB while reading"


def test_serve_refuses_a_bucket_not_set_up_as_configured(
    tmp_path: Path, moto_server: MotoServer, bucket: str, forbidden_endpoint: str
) -> None:
    """``sealmail serve``: one line on stderr and exit 1, before listening on anything."""
    subprocess.run(
        [sys.executable, "-m", "sealmail", "init", "--dir", str(tmp_path / "w")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = tmp_path / "w" / "sealmail.toml"
    no_versioning = new_bucket(moto_server.endpoint, lock=True)
    s3_client(moto_server.endpoint).put_bucket_versioning(
        Bucket=no_versioning, VersioningConfiguration={"Status": "Suspended"}
    )
    down = MotoServer()  # a free port with nothing listening
    cases = [
        (
            "s3://t-missing-bucket/a",
            moto_server.endpoint,
            "off",
            "archive bucket 't-missing-bucket' does not exist",
        ),
        (
            f"s3://{bucket}/a",
            moto_server.endpoint,
            "compliance",
            f"archive bucket '{bucket}' has no Object Lock enabled",
        ),
        (f"s3://{no_versioning}/a", moto_server.endpoint, "governance", "versioning is off"),
        ("s3://t-theirs/a", forbidden_endpoint, "off", "no access to archive bucket 't-theirs'"),
        (f"s3://{bucket}/a", down.endpoint, "off", f"cannot reach the archive bucket '{bucket}'"),
    ]
    for url, endpoint, lock, message in cases:
        env = {
            **os.environ,
            "SEALMAIL_ARCHIVE_URL": url,
            "SEALMAIL_S3_ENDPOINT_URL": endpoint,
            "SEALMAIL_S3_OBJECT_LOCK": lock,
        }
        proc = subprocess.run(
            [sys.executable, "-m", "sealmail", "--config", str(config), "serve"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 1, (url, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sealmail: "), proc.stderr
        assert message in lines[0], lines[0]
        assert "listening" not in proc.stdout


class _Flaky(http.server.BaseHTTPRequestHandler):
    """A scripted S3 endpoint: PUTs answer 503 SlowDown ``throttle`` times before 200; a GET
    without Range sends half of ``blob`` and drops the connection, a ranged GET the rest."""

    protocol_version = "HTTP/1.1"
    blob = b""
    throttle = 0
    seen: list[tuple[str, str, str]] = []

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(("PUT", self.headers.get("Range", ""), ""))
        if type(self).throttle > 0:
            type(self).throttle -= 1
            body = b"<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("ETag", '"abc"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        rng = self.headers.get("Range", "")
        self.seen.append(("GET", rng, self.headers.get("If-Match", "")))
        if not rng:
            self.send_response(200)
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", str(len(self.blob)))
            self.end_headers()
            self.wfile.write(self.blob[: len(self.blob) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the connection drops mid-body
            return
        start = int(rng.split("=")[1].rstrip("-"))
        rest = self.blob[start:]
        self.send_response(206)
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(rest)))
        self.send_header("Content-Range", f"bytes {start}-{len(self.blob) - 1}/{len(self.blob)}")
        self.end_headers()
        self.wfile.write(rest)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky(aws_env: None) -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Flaky", (_Flaky,), {"seen": [], "throttle": 0, "blob": b""})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_throttling_is_retried_then_transient(flaky: tuple[str, type[_Flaky]]) -> None:
    endpoint, handler = flaky
    store = S3Store("t-busy", "", endpoint_url=endpoint, max_attempts=3)
    handler.throttle = 2
    assert store.put("o_retry1", [b"x" * 100]) == 100  # third attempt succeeds
    assert [m for m, _, _ in handler.seen] == ["PUT"] * 3
    handler.throttle = 10
    with pytest.raises(TransientError, match="S3 said SlowDown for s3://t-busy/o_retry2"):
        store.put("o_retry2", [b"y"])
    assert len(handler.seen) == 6


def test_dropped_read_resumes_from_where_it_stopped(flaky: tuple[str, type[_Flaky]]) -> None:
    endpoint, handler = flaky
    handler.blob = os.urandom(3 * 1024 * 1024 + 17)
    store = S3Store("t-drop", "p", endpoint_url=endpoint, max_attempts=1)
    with store.open("o_drop01") as fh:
        got = b"".join(iter(lambda: fh.read(64 * 1024), b""))
    assert got == handler.blob
    (first, second) = handler.seen
    assert first == ("GET", "", "")
    assert second[0] == "GET" and second[1].startswith("bytes=") and second[2] == '"v1"'
    assert 0 < int(second[1][6:].rstrip("-")) < len(handler.blob)
