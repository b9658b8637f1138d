"""Keys and certificates made at test start (never committed): OpenPGP keys made by the real
``gpg`` in a throwaway home (which keeps the secret keys, for decrypting), X.509 certificates
made by a throwaway CA with ``cryptography``."""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers import processes


@dataclasses.dataclass
class PgpKeys:
    home: Path  # holds the secret keys
    public: dict[str, bytes]  # name -> armored public key
    fingerprint: dict[str, str]
    secret_bob: bytes

    def gpg(self, *args: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        """gpg on the secret-key home; its agent is stopped after every call, so none
        outlives a test run, even one that is killed."""
        try:
            return _gpg(self.home, *args, data=data)
        finally:
            stop_agent(self.home)


def _gpg(home: Path, *args: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return gpg_in(home, "--pinentry-mode", "loopback", "--passphrase", "", *args, data=data)


def gpg_in(home: Path, *args: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The gpg command line on ``home``; raises with gpg's stderr on failure."""
    proc = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", *args],
        input=data,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if proc.returncode:
        raise AssertionError(f"gpg {args} failed: {proc.stderr.decode(errors='replace')}")
    return proc


def _fpr(home: Path, uid: str) -> str:
    out = _gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


def _make(home: Path, uid: str, primary: str, sub: str | None, expire: str, *opts: str) -> str:
    _gpg(home, *opts, "--quick-gen-key", uid, primary, "sign", expire)
    fpr = _fpr(home, uid)
    if sub:
        _gpg(home, *opts, "--quick-add-key", fpr, sub, "encr", expire)
    return fpr


def make_pgp_keys(home: Path) -> PgpKeys:
    home.mkdir(mode=0o700)
    processes.watch_gpg_home(home)
    past = ("--faked-system-time", "20200101T000000")
    future = ("--faked-system-time", "20400101T000000!")
    specs = {
        "bob": ("Bob Recipient <bob@recipient.test>", "rsa3072", "rsa3072", "1y", ()),
        "ed": ("Ed Curve <ed@recipient.test>", "ed25519", "cv25519", "never", ()),
        "expired": ("Old Key <old@recipient.test>", "rsa2048", "rsa2048", "1y", past),
        "future": ("Future Key <future@recipient.test>", "rsa2048", "rsa2048", "never", future),
        "revoked": ("Revoked Key <revoked@recipient.test>", "rsa2048", "rsa2048", "never", ()),
        "weak": ("Weak Key <weak@recipient.test>", "rsa1024", "rsa1024", "never", ()),
        "signonly": ("Sign Only <signonly@recipient.test>", "ed25519", None, "never", ()),
        "noemail": ("No Email At All", "ed25519", "cv25519", "never", ()),
    }
    fprs = {}
    for name, (uid, primary, sub, expire, opts) in specs.items():
        fprs[name] = _make(home, uid, primary, sub, expire, *opts)
    rev = (home / "openpgp-revocs.d" / f"{fprs['revoked']}.rev").read_text()
    _gpg(home, "--import", data=rev.replace(":-----BEGIN", "-----BEGIN").encode())
    public = {name: _gpg(home, "--armor", "--export", fpr).stdout for name, fpr in fprs.items()}
    try:
        secret = _gpg(home, "--armor", "--export-secret-keys", fprs["bob"]).stdout
    finally:
        stop_agent(home)
    return PgpKeys(home, public, fprs, secret)


def stop_agent(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False
    )


@dataclasses.dataclass
class Certs:
    ca_pem: bytes
    pem: dict[str, bytes]  # name -> certificate PEM
    der: dict[str, bytes]
    key_pem: dict[str, bytes]  # name -> private key PEM (PKCS#8, no passphrase)


def _name(cn: str, email: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


def make_certs() -> Certs:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Sealmail Test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ku_enc = dict(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    day = datetime.timedelta(days=1)
    specs: dict[str, dict] = {
        "carol": {"email": "carol@recipient.test"},
        "subject_email": {"email": None, "subject_email": "dave@recipient.test"},
        "expired": {"email": "exp@recipient.test", "window": (now - 30 * day, now - day)},
        "future": {"email": "fut@recipient.test", "window": (now + day, now + 30 * day)},
        "sign_only": {"email": "sig@recipient.test", "ku": {"key_encipherment": False}},
        "server_eku": {"email": "srv@recipient.test", "eku": [ExtendedKeyUsageOID.SERVER_AUTH]},
        "no_email": {"email": None},
        "weak": {"email": "weak@recipient.test", "bits": 1024},
    }
    pem, der, keys = {}, {}, {}
    for name, spec in specs.items():
        key = rsa.generate_private_key(65537, spec.get("bits", 2048))
        start, end = spec.get("window", (now - day, now + 30 * day))
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(f"Test {name}", spec.get("subject_email")))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.KeyUsage(**{**ku_enc, **spec.get("ku", {})}), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(spec.get("eku", [ExtendedKeyUsageOID.EMAIL_PROTECTION])),
                critical=False,
            )
        )
        if spec["email"]:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(spec["email"])]), critical=False
            )
        cert = b.sign(ca_key, hashes.SHA256())
        pem[name] = cert.public_bytes(serialization.Encoding.PEM)
        der[name] = cert.public_bytes(serialization.Encoding.DER)
        keys[name] = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return Certs(ca.public_bytes(serialization.Encoding.PEM), pem, der, keys)


@pytest.fixture(scope="session")
def pgp_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgpKeys]:
    home = tmp_path_factory.mktemp("gpgkeys") / "home"
    try:
        yield make_pgp_keys(home)
    finally:
        stop_agent(home)


@pytest.fixture(scope="session")
def certs() -> Certs:
    return make_certs()
