"""The sweep and S3 Object Lock in compliance mode (moto's S3 on loopback, both databases):
an entry whose database retention is over while its object is still locked loses its key
(unreadable from then on) but the sweep never asks S3 to delete the object before its lock
date; S3 itself refuses such a delete; a legal hold keeps both object and key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from archive import holds
from archive.sweep import sweep
from core.errors import NotFound
from core.services import Services
from tests.archive.test_retention import archived, entry_row, key_of, make_tenant, read
from tests.conftest import make_settings
from tests.helpers.moto_server import MotoServer
from tests.helpers.stores import empty_bucket, new_bucket, s3_client

DAY = 86400.0


async def test_sweep_respects_compliance_lock(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    bucket = new_bucket(moto_server.endpoint, lock=True)
    settings = make_settings(
        tmp_path,
        db_url,
        archive_url=f"s3://{bucket}/a",
        s3_endpoint_url=moto_server.endpoint,
        s3_object_lock="compliance",
        archive_retention="1d",  # originals are locked for a day from now
    )
    svc = Services.open(settings)
    try:
        tid = await make_tenant(svc, "Acme")
        # the database says retention is over (a tenant with a shorter retention than the
        # lock); the original is locked for another day
        due = await archived(svc, tid, "locked original")
        held = await archived(svc, tid, "held original")
        async with svc.db.session() as s:
            await holds.place(svc, s, tid, "officer", "message", "case", message=held.id)
            await s.commit()
        client = s3_client(moto_server.endpoint)
        head = client.head_object(Bucket=bucket, Key=f"a/{due.object_id}")
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"].timestamp() > time.time() + DAY / 2

        report = await sweep(svc)

        # the key is destroyed (crypto-shredded) but the locked object was not asked for
        assert report.objects_locked == 1 and report.problems == []
        assert (await key_of(svc, due.object_id)).wrapped_key is None
        with pytest.raises(NotFound):
            await read(svc, tid, due.object_id)
        row = await entry_row(svc, due.id)
        assert row.shredded_at is None  # the object is deleted after its lock date:
        lock = head["ObjectLockRetainUntilDate"].timestamp()
        assert abs(row.retain_until - lock) < 2  # the entry comes due again then
        again = await sweep(svc)  # and not every hour until then
        assert again.objects_locked == 0 and again.keys_destroyed == 0
        assert again.entries_due == 0
        assert client.head_object(Bucket=bucket, Key=f"a/{due.object_id}")  # still there
        # and S3 refuses to delete it before its date, through the plain S3 API
        with pytest.raises(ClientError):
            client.delete_object(
                Bucket=bucket, Key=f"a/{due.object_id}", VersionId=head["VersionId"]
            )
        # the meta (not an archive kind: no lock) is gone
        assert due.meta_object_id
        assert not svc.store.exists(due.meta_object_id)
        # the held entry keeps object and key
        assert b"held original" in await read(svc, tid, held.object_id)
        assert (await entry_row(svc, held.id)).shredded_at is None
    finally:
        await svc.close()
        empty_bucket(moto_server.endpoint, bucket)
