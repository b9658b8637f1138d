"""The recipient key directory: real gpg keys and X.509 certificates made at test start,
imported, listed and removed on both databases; every refusal says why in one line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core import recipient_keys
from core.errors import NotFound, PermanentError
from core.models import AuditEvent
from core.services import Services
from tests.helpers import keygen
from tests.helpers.keygen import Certs, PgpKeys
from tests.portal.conftest import make_tenant

pgp_keys, certs = keygen.pgp_keys, keygen.certs  # session fixtures


async def test_import_list_remove_on_both_databases(
    services: Services, pgp_keys: PgpKeys, certs: Certs
) -> None:
    tid = await make_tenant(services, "Acme", "acme.example")
    other = await make_tenant(services, "Other", "other.example")
    async with services.db.session() as s:
        rows = await recipient_keys.import_keys(s, tid, pgp_keys.public["bob"])
        rows += await recipient_keys.import_keys(s, tid, pgp_keys.public["ed"], actor="api")
        rows += await recipient_keys.import_keys(s, tid, certs.der["carol"])
        await s.commit()
    assert [(r.kind, r.email, r.algorithm) for r in rows] == [
        ("pgp", "bob@recipient.test", "rsa3072"),
        ("pgp", "ed@recipient.test", "cv25519"),
        ("smime", "carol@recipient.test", "rsa2048"),
    ]
    assert rows[0].fingerprint == pgp_keys.fingerprint["bob"]
    assert b"BEGIN PGP PUBLIC KEY BLOCK" in rows[0].material
    assert b"PRIVATE" not in rows[0].material and b"BEGIN CERTIFICATE" in rows[2].material

    async with services.db.session() as s:
        listed = await recipient_keys.list_keys(s, tid)
        assert {k.email for k in listed} == {
            "bob@recipient.test",
            "ed@recipient.test",
            "carol@recipient.test",
        }
        assert await recipient_keys.list_keys(s, other) == []
        assert await recipient_keys.methods_available(s, tid, "Bob@Recipient.test") == {"pgp"}
        assert await recipient_keys.methods_available(s, tid, "carol@recipient.test") == {"smime"}
        assert await recipient_keys.methods_available(s, other, "bob@recipient.test") == set()

        # importing again refreshes the row instead of adding one
        again = await recipient_keys.import_keys(s, tid, pgp_keys.public["bob"])
        await s.commit()
        assert again[0].id == rows[0].id
        assert len(await recipient_keys.list_keys(s, tid)) == 3

        # another tenant cannot remove it; a fingerprint with spaces, lower case, works
        with pytest.raises(NotFound):
            await recipient_keys.remove_key(s, other, pgp_keys.fingerprint["bob"])
        fpr = pgp_keys.fingerprint["bob"].lower()
        spaced = " ".join(fpr[i : i + 4] for i in range(0, len(fpr), 4))
        removed = await recipient_keys.remove_key(s, tid, spaced)
        assert [r.email for r in removed] == ["bob@recipient.test"]
        await recipient_keys.remove_key(s, tid, rows[2].id)  # by id
        await s.commit()
        assert [k.email for k in await recipient_keys.list_keys(s, tid)] == ["ed@recipient.test"]
        with pytest.raises(NotFound):
            await recipient_keys.remove_key(s, tid, rows[2].id)

        events = (
            (await s.execute(select(AuditEvent).where(AuditEvent.tenant_id == tid))).scalars().all()
        )
    actions = [e.action for e in events if e.action.startswith("recipient_key.")]
    assert sorted(actions) == sorted(
        ["recipient_key.import"] * 3 + ["recipient_key.update"] + ["recipient_key.remove"] * 2
    )
    api_event = next(e for e in events if e.actor == "api")
    assert json.loads(api_event.detail)["email"] == "ed@recipient.test"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("expired", "has expired"),
        ("future", "is not yet valid"),
        ("revoked", "is revoked"),
        ("weak", r"is too weak: RSA 1024 bits \(minimum 2048\)"),
        ("signonly", "cannot encrypt"),
        ("noemail", "has no email address"),
    ],
)
def test_pgp_refusals(pgp_keys: PgpKeys, name: str, message: str) -> None:
    with pytest.raises(PermanentError, match=message) as err:
        recipient_keys.parse_keys(pgp_keys.public[name])
    assert "\n" not in str(err.value)
    assert pgp_keys.fingerprint[name] in str(err.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("expired", "has expired"),
        ("future", "is not yet valid"),
        ("sign_only", "key usage lacks keyEncipherment"),
        ("server_eku", "extended key usage lacks emailProtection"),
        ("no_email", "has no email address"),
        ("weak", "too weak: RSA 1024 bits"),
    ],
)
def test_certificate_refusals(certs: Certs, name: str, message: str) -> None:
    for data in (certs.pem[name], certs.der[name]):
        with pytest.raises(PermanentError, match=message):
            recipient_keys.parse_keys(data)


def test_certificate_email_from_subject_and_ca_refused(certs: Certs) -> None:
    assert recipient_keys.parse_keys(certs.pem["subject_email"])[0].email == "dave@recipient.test"
    with pytest.raises(PermanentError, match="CA certificate"):
        recipient_keys.parse_keys(certs.ca_pem)


def test_private_keys_refused(pgp_keys: PgpKeys, certs: Certs) -> None:
    for data in (
        pgp_keys.secret_bob,
        certs.key_pem["carol"],
        certs.key_pem["carol"] + certs.pem["carol"],
    ):
        with pytest.raises(PermanentError, match="private key material"):
            recipient_keys.parse_keys(data)
    binary = pgp_keys.gpg("--export-secret-keys", pgp_keys.fingerprint["bob"]).stdout
    with pytest.raises(PermanentError, match="private key material"):
        recipient_keys.parse_keys(binary)


def test_binary_key_and_garbage(pgp_keys: PgpKeys) -> None:
    binary = pgp_keys.gpg("--export", pgp_keys.fingerprint["ed"]).stdout
    assert recipient_keys.parse_keys(binary)[0].email == "ed@recipient.test"
    for junk in (b"", b"hello world", b"\x30\x03\x02\x01\x00", b"\x99\x00\x01junk"):
        with pytest.raises(PermanentError):
            recipient_keys.parse_keys(junk)


async def test_one_bad_key_refuses_the_whole_import(services: Services, pgp_keys: PgpKeys) -> None:
    tid = await make_tenant(services, "Acme", "acme.example")
    async with services.db.session() as s:
        with pytest.raises(PermanentError, match="revoked"):
            await recipient_keys.import_keys(
                s, tid, pgp_keys.public["bob"] + pgp_keys.public["revoked"]
            )
        await s.rollback()
        assert await recipient_keys.list_keys(s, tid) == []


async def test_a_key_with_two_addresses_serves_both(services: Services, tmp_path) -> None:  # noqa: ANN001
    from tests.helpers.keygen import _gpg, _make, stop_agent

    home = tmp_path / "two-uids"
    home.mkdir(mode=0o700)
    try:
        fpr = _make(home, "Gail <gail@recipient.test>", "ed25519", "cv25519", "never")
        _gpg(home, "--quick-add-uid", fpr, "Gail at home <gail@home.test>")
        public = _gpg(home, "--armor", "--export", fpr).stdout
    finally:
        stop_agent(home)
    tid = await make_tenant(services, "Acme", "acme.example")
    async with services.db.session() as s:
        rows = await recipient_keys.import_keys(s, tid, public)
        await s.commit()
        assert sorted(r.email for r in rows) == ["gail@home.test", "gail@recipient.test"]
        assert {r.fingerprint for r in rows} == {fpr}
        for address in ("gail@recipient.test", "gail@home.test"):
            assert await recipient_keys.methods_available(s, tid, address) == {"pgp"}
        again = await recipient_keys.import_keys(s, tid, public)
        await s.commit()
        assert sorted(r.id for r in again) == sorted(r.id for r in rows)
