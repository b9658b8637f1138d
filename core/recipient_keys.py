"""Recipients' OpenPGP public keys and S/MIME certificates known to a tenant.

The database is the directory (so every process and machine sees the same keys); a
tenant's GnuPG home is only a cache built from it. Everything in the directory passed
:func:`parse_keys` — not expired, revoked or not yet valid, able to encrypt, strong enough,
public only, with an email address — so the gateway may treat a directory key as valid.

One row per key and address (a key with three user ids, or a certificate with three
addresses, gives three rows): the table is unique on ``(tenant, kind, fingerprint, email)``.
Importing a key again refreshes its rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.errors import NotFound, PermanentError
from core.ids import new_id
from core.models import RecipientKey, now

MIN_RSA_BITS = 2048  # RSA, DSA, ElGamal
STRONG_CURVES = frozenset(
    {
        "ed25519",
        "cv25519",
        "ed448",
        "cv448",
        "nistp256",
        "nistp384",
        "nistp521",
        "brainpoolP256r1",
        "brainpoolP384r1",
        "brainpoolP512r1",
    }
)
_PGP_FINITE_FIELD = {"1": "rsa", "2": "rsa", "3": "rsa", "16": "elg", "17": "dsa", "20": "elg"}
_PGP_CURVE_ALGOS = {"18", "19", "22", "25", "26", "27", "28"}
MAX_KEY_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class ParsedKey:
    """One validated public key or certificate, ready to be a directory row."""

    kind: str  # pgp | smime
    email: str
    fingerprint: str
    algorithm: str
    bits: int
    not_after: float | None
    material: bytes  # armored OpenPGP public key, or PEM certificate


# --- parsing and validation (blocking: run in a thread) ---------------------------------------


def parse_keys(data: bytes, at: float | None = None) -> list[ParsedKey]:
    """Every key in ``data``, validated; any bad key refuses the whole import."""
    at = time.time() if at is None else at
    if not data.strip():
        raise PermanentError("no key or certificate given")
    if len(data) > MAX_KEY_BYTES:
        raise PermanentError("key data too large (over 1 MiB)")
    if b"PRIVATE KEY" in data:
        raise PermanentError("refused: this is private key material; import public keys only")
    if b"-----BEGIN CERTIFICATE-----" in data:
        return [p for c in x509.load_pem_x509_certificates(data) for p in _parse_cert(c, at)]
    if b"-----BEGIN PGP" in data:
        return _parse_pgp(data, at)
    if data[:1] == b"\x30":  # a DER SEQUENCE: an X.509 certificate, if anything
        try:
            cert = x509.load_der_x509_certificate(data)
        except ValueError:
            raise PermanentError("not an OpenPGP key or an X.509 certificate") from None
        return _parse_cert(cert, at)
    if data[:1] and data[0] & 0x80:  # an OpenPGP packet header
        return _parse_pgp(data, at)
    raise PermanentError("not an OpenPGP key or an X.509 certificate")


def _gpg(home: str):  # -> gnupg.GPG
    import gnupg

    if shutil.which("gpg") is None:
        raise PermanentError("cannot read OpenPGP keys: gpg is not installed")
    return gnupg.GPG(gnupghome=home, options=["--no-autostart"])


def _parse_pgp(data: bytes, at: float) -> list[ParsedKey]:
    with tempfile.TemporaryDirectory(prefix="sealmail-gpg-") as home:
        try:
            gpg = _gpg(home)
            found = gpg.scan_keys_mem(data)
            if not found:
                raise PermanentError("not a valid OpenPGP key")
            if any(k["type"] == "sec" for k in found):
                raise PermanentError("refused: this is private key material; import public keys")
            checked = [(k, _check_pgp(k, at)) for k in found]
            gpg.import_keys(data)
            keys: list[ParsedKey] = []
            for k, (addresses, algorithm, bits, not_after) in checked:
                material = gpg.export_keys(k["fingerprint"], minimal=True)
                if not material:
                    raise PermanentError(f"key {k['fingerprint']} could not be read")
                keys.extend(
                    ParsedKey(
                        "pgp",
                        email_addr,
                        k["fingerprint"].upper(),
                        algorithm,
                        bits,
                        not_after,
                        material.encode("ascii"),
                    )
                    for email_addr in addresses
                )
            return keys
        finally:
            subprocess.run(  # noqa: S603 - fixed argv; --no-autostart should leave nothing
                ["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True, check=False
            )


def _strength(algo: str, length: str, curve: str, fpr: str) -> tuple[str, int]:
    bits = int(length or 0)
    if algo in _PGP_FINITE_FIELD:
        if bits < MIN_RSA_BITS:
            name = _PGP_FINITE_FIELD[algo].upper()
            raise PermanentError(f"key {fpr} is too weak: {name} {bits} bits (minimum 2048)")
        return f"{_PGP_FINITE_FIELD[algo]}{bits}", bits
    if algo in _PGP_CURVE_ALGOS and curve in STRONG_CURVES:
        return curve, bits
    raise PermanentError(f"key {fpr} uses an unsupported or weak algorithm ({curve or algo})")


def _check_pgp(k: dict, at: float) -> tuple[list[str], str, int, float | None]:
    fpr = k["fingerprint"]
    validity = k.get("trust", "")
    if validity == "r":
        raise PermanentError(f"key {fpr} is revoked")
    if validity == "e" or (k.get("expires") and float(k["expires"]) <= at):
        raise PermanentError(f"key {fpr} has expired")
    if k.get("date") and float(k["date"]) > at + 300:
        raise PermanentError(f"key {fpr} is not yet valid")
    if validity in ("d", "i"):
        raise PermanentError(f"key {fpr} is disabled or invalid")
    _strength(k["algo"], k["length"], k.get("curve", ""), fpr)
    enc = []  # (algo, length, curve, expires) of usable encryption (sub)keys
    if "e" in k.get("cap", ""):
        enc.append((k["algo"], k["length"], k.get("curve", ""), k.get("expires", "")))
    for sub in k.get("subkey_info", {}).values():
        if "e" not in sub.get("cap", "") or sub.get("trust") in ("e", "r", "d", "i"):
            continue
        if sub.get("expires") and float(sub["expires"]) <= at:
            continue
        enc.append((sub["algo"], sub["length"], sub.get("curve", ""), sub.get("expires", "")))
    if not enc or "E" not in k.get("cap", ""):
        raise PermanentError(f"key {fpr} cannot encrypt (no valid encryption subkey)")
    algorithm, bits = "", 0
    for algo, length, curve, _exp in enc:
        algorithm, bits = _strength(algo, length, curve, fpr)
    emails = [email.utils.parseaddr(uid)[1].strip().lower() for uid in k.get("uids", [])]
    emails = [e for e in emails if "@" in e]
    if not emails:
        raise PermanentError(f"key {fpr} has no email address in its user ids")
    limits = [float(k["expires"])] if k.get("expires") else []
    sub_exp = [float(e[3]) if e[3] else None for e in enc]
    if None not in sub_exp:
        limits.append(max(x for x in sub_exp if x is not None))
    return list(dict.fromkeys(emails)), algorithm, bits, min(limits) if limits else None


def _parse_cert(cert: x509.Certificate, at: float) -> list[ParsedKey]:
    fpr = cert.fingerprint(hashes.SHA256()).hex().upper()
    subject = cert.subject.rfc4514_string()
    if cert.not_valid_before_utc.timestamp() > at:
        raise PermanentError(f"certificate {subject} is not yet valid")
    if cert.not_valid_after_utc.timestamp() <= at:
        raise PermanentError(f"certificate {subject} has expired")
    ext = cert.extensions
    try:
        if ext.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise PermanentError(f"certificate {subject} is a CA certificate, not a recipient's")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = ext.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_encipherment:
            raise PermanentError(
                f"certificate {subject} is not for encryption (key usage lacks keyEncipherment)"
            )
    except x509.ExtensionNotFound:
        pass  # RFC 5280: no key usage extension means no restriction
    try:
        eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
        if not {
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
            ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
        } & (set(eku)):
            raise PermanentError(
                f"certificate {subject} is not for email (extended key usage lacks emailProtection)"
            )
    except x509.ExtensionNotFound:
        pass
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise PermanentError(f"certificate {subject}: only RSA certificates can receive S/MIME")
    if key.key_size < MIN_RSA_BITS:
        raise PermanentError(
            f"certificate {subject} is too weak: RSA {key.key_size} bits (minimum 2048)"
        )
    emails: list[str] = []
    try:
        emails = ext.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.RFC822Name
        )
    except x509.ExtensionNotFound:
        pass
    if not emails:
        emails = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    emails = [e.strip().lower() for e in emails if "@" in e]
    if not emails:
        raise PermanentError(f"certificate {subject} has no email address")
    from cryptography.hazmat.primitives.serialization import Encoding

    return [
        ParsedKey(
            "smime",
            address,
            fpr,
            f"rsa{key.key_size}",
            key.key_size,
            cert.not_valid_after_utc.timestamp(),
            cert.public_bytes(Encoding.PEM),
        )
        for address in dict.fromkeys(emails)
    ]


# --- the directory ----------------------------------------------------------------------------


def normalize_fingerprint(ref: str) -> str:
    return ref.replace(" ", "").replace(":", "").strip().upper()


async def import_keys(
    session: AsyncSession,
    tenant_id: str,
    data: bytes,
    *,
    source: str = "import",
    actor: str = "cli",
) -> list[RecipientKey]:
    """Validate and store every key in ``data`` (all or nothing); the caller commits."""
    parsed = await asyncio.to_thread(parse_keys, data)
    rows = []
    for p in parsed:
        row = (
            await session.execute(
                select(RecipientKey).where(
                    RecipientKey.tenant_id == tenant_id,
                    RecipientKey.kind == p.kind,
                    RecipientKey.fingerprint == p.fingerprint,
                    RecipientKey.email == p.email,
                )
            )
        ).scalar_one_or_none()
        action = "recipient_key.update" if row else "recipient_key.import"
        if row is None:
            row = RecipientKey(
                id=new_id("rk_"),
                tenant_id=tenant_id,
                kind=p.kind,
                fingerprint=p.fingerprint,
                email=p.email,
            )
            session.add(row)
        row.email = p.email
        row.algorithm = p.algorithm
        row.bits = p.bits
        row.not_after = p.not_after
        row.source = source
        row.material = p.material
        row.created_at = now()
        await session.flush()
        await audit(
            session,
            tenant_id,
            actor,
            action,
            row.id,
            kind=p.kind,
            email=p.email,
            fingerprint=p.fingerprint,
            source=source,
        )
        rows.append(row)
    return rows


async def list_keys(session: AsyncSession, tenant_id: str) -> Sequence[RecipientKey]:
    stmt = (
        select(RecipientKey)
        .where(RecipientKey.tenant_id == tenant_id)
        .order_by(RecipientKey.email, RecipientKey.kind, RecipientKey.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


async def remove_key(
    session: AsyncSession, tenant_id: str, ref: str, *, actor: str = "cli"
) -> list[RecipientKey]:
    """Remove the tenant's key(s) with fingerprint or id ``ref``; the caller commits."""
    fpr = normalize_fingerprint(ref)
    rows = (
        (
            await session.execute(
                select(RecipientKey).where(
                    RecipientKey.tenant_id == tenant_id,
                    or_(RecipientKey.fingerprint == fpr, RecipientKey.id == ref.strip()),
                )
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        raise NotFound(f"no key {ref!r} for this tenant")
    for row in rows:
        await audit(
            session,
            tenant_id,
            actor,
            "recipient_key.remove",
            row.id,
            kind=row.kind,
            email=row.email,
            fingerprint=row.fingerprint,
        )
        await session.delete(row)
    await session.flush()
    return list(rows)


async def usable_keys(
    session: AsyncSession, tenant_id: str, email: str, kind: str | None = None
) -> Sequence[RecipientKey]:
    """The tenant's unexpired keys for ``email`` (newest first), of one kind or both."""
    stmt = (
        select(RecipientKey)
        .where(
            RecipientKey.tenant_id == tenant_id,
            RecipientKey.email == email.strip().lower(),
            or_(RecipientKey.not_after.is_(None), RecipientKey.not_after > now()),
        )
        .order_by(RecipientKey.created_at.desc())
    )
    if kind is not None:
        stmt = stmt.where(RecipientKey.kind == kind)
    return (await session.execute(stmt)).scalars().all()


async def methods_available(session: AsyncSession, tenant_id: str, email: str) -> set[str]:
    """Which of ``pgp`` and ``smime`` the tenant can encrypt to ``email`` with now."""
    return {k.kind for k in await usable_keys(session, tenant_id, email)}
