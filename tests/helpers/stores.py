"""The two stores for the tests: fixtures that run a test once on the local disk and once
on a real S3 HTTP endpoint (moto's server on loopback, a fresh bucket per test), and the
bucket helpers. A conftest that wants them imports the fixtures by name."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from core.config.settings import Settings
from core.storage.interface import ObjectStore
from core.storage.local import LocalStore
from core.storage.s3 import S3Store
from tests.conftest import make_settings
from tests.helpers.moto_server import MotoServer

STORES = ["local", "s3"]


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def new_bucket(endpoint: str, *, lock: bool = False, versioning: bool = False) -> str:
    """A fresh bucket (a valid DNS name) on ``endpoint``."""
    name = f"t-{secrets.token_hex(8)}"
    client = s3_client(endpoint)
    if lock:
        client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    else:
        client.create_bucket(Bucket=name)
        if versioning:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def empty_bucket(endpoint: str, bucket: str) -> None:
    """Free the moto server's memory after a test (objects still locked stay)."""
    client = s3_client(endpoint)
    try:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in (*page.get("Versions", ()), *page.get("DeleteMarkers", ())):
                try:
                    client.delete_object(
                        Bucket=bucket,
                        Key=v["Key"],
                        VersionId=v["VersionId"],
                        BypassGovernanceRetention=True,
                    )
                except client.exceptions.ClientError:
                    pass
    except Exception:  # noqa: BLE001, S110 - best effort; a stopped server has nothing left
        pass


def listing(store: ObjectStore) -> list[str]:
    """Every object (and temp file) in the store, seen from outside: the directory tree,
    or the bucket through the S3 API (every version, so a hidden one counts too)."""
    if isinstance(store, LocalStore):
        return sorted(p.name for p in store.root.rglob("*") if p.is_file())
    assert isinstance(store, S3Store)
    client = s3_client(store.endpoint_url)
    names: list[str] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=store.bucket):
        names += [v["Key"] for v in page.get("Versions", ())]
    return sorted(names)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for the standard chain (any will do for a local endpoint)."""
    for k, v in MotoServer.ENV.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def bucket(moto_server: MotoServer) -> Iterator[str]:
    name = new_bucket(moto_server.endpoint)
    yield name
    empty_bucket(moto_server.endpoint, name)


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> ObjectStore:
    """An empty store of each kind (S3: small 5 MiB parts, so multipart is cheap to test)."""
    if store_kind == "local":
        s = LocalStore(tmp_path / "archive")
        s.create()
        return s
    server: MotoServer = request.getfixturevalue("moto_server")
    name = request.getfixturevalue("bucket")
    return S3Store(name, "archive", endpoint_url=server.endpoint, part_size=5 * 1024 * 1024)


@pytest.fixture
def settings(
    tmp_path: Path, db_url: str, store_kind: str, request: pytest.FixtureRequest
) -> Settings:
    """The root ``settings`` on each store: ``archive_url`` is ``s3://<fresh bucket>/...``
    with ``s3_endpoint_url`` at the moto server for the S3 runs."""
    if store_kind == "local":
        return make_settings(tmp_path, db_url)
    server: MotoServer = request.getfixturevalue("moto_server")
    name = request.getfixturevalue("bucket")
    return make_settings(
        tmp_path,
        db_url,
        archive_url=f"s3://{name}/archive",
        s3_endpoint_url=server.endpoint,
    )
