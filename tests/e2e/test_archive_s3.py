"""The whole product on an S3 archive: ``sealmail serve`` with ``archive_url = s3://...`` at
moto's S3 on loopback; a sealed message goes in over SMTP, the notification comes out,
and the bucket holds the message's objects, all ciphertext."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_link, make_message, send
from tests.helpers.moto_server import MotoServer
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.stores import empty_bucket, new_bucket, s3_client


@pytest.mark.e2e
def test_sealed_message_is_archived_in_the_bucket(
    product: Product, sink: SmtpSink, moto_server: MotoServer
) -> None:
    bucket = new_bucket(moto_server.endpoint, lock=True)
    product.init(
        archive_url=f"s3://{bucket}/sealmail",
        s3_endpoint_url=moto_server.endpoint,
        s3_object_lock="governance",
    )
    tenant = product.create_tenant("Acme", "acme.example")
    product.start()
    try:
        marker_subject = "MARKER-SUBJECT-" + secrets.token_hex(8)
        marker_body = "MARKER-BODY-" + secrets.token_hex(8)
        marker_file = "MARKER-FILE-" + secrets.token_hex(8)
        msg = make_message(
            f"[secure] {marker_subject}",
            f"Dear Bob,\n\n{marker_body}\n",
            attachments=[("notes.txt", "text/plain", marker_file.encode() * 50)],
        )
        reply = send(product.smtp_port, msg, tenant["smtp_username"], tenant["smtp_password"])
        assert re.match(r"2\.0\.0 queued as \S+", reply), reply

        note = sink.wait_for(lambda m: "bob@recipient.test" in m.rcpt_tos)[0]
        assert marker_body.encode() not in note.data
        find_link(note.data, product.portal_url)  # the notification carries the portal link

        client = s3_client(moto_server.endpoint)
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        keys = [o["Key"] for o in listed]
        assert len(keys) >= 3, keys  # the raw original, its portal parts and metadata
        assert all(k.startswith("sealmail/o_") for k in keys), keys
        locked = 0
        for key in keys:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            for marker in (marker_subject, marker_body, marker_file):
                assert marker.encode() not in body, f"{marker} in clear in {key}"
            head = client.head_object(Bucket=bucket, Key=key)
            locked += head.get("ObjectLockMode") == "GOVERNANCE"
        assert locked >= 1  # the raw archive copy carries its Object Lock date
        # nothing went to the local disk instead
        local = product.root / "var" / "archive"
        assert not local.exists() or not [p for p in local.rglob("*") if p.is_file()]
    finally:
        assert product.stop() == 0, product.logs()
        empty_bucket(moto_server.endpoint, bucket)
