"""The key hierarchy: root key (a file, or a key in AWS KMS) → tenant KEK → per-object data
key.

Wrapping is AES-256-GCM with a random 96-bit nonce and associated data naming what the
key belongs to, so a wrapped key moved to another tenant or object does not unwrap. A KMS
root wraps with KMS ``Encrypt`` and the associated data in the encryption context.

Purpose keys (``RootKey.derive``) come from a *derivation secret* by HKDF, not from the
root key itself, so they stay the same when the root is rotated: for a file root created
before rotation existed the secret is that first root key (what derivation always used);
once a root has been rotated the secret lives in a ``.derive`` file, wrapped by the root;
for a KMS root it lives in the database, wrapped by the root (``core.rootsecret``). See
docs/FORMAT.md, "Root rotation".
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigError, IntegrityError, TransientError

if TYPE_CHECKING:
    from core.config import Settings

KEY_SIZE = 32
_WRAP_VERSION = b"\x01"
_KMS_WRAP_VERSION = b"\x81"
DERIVE_AAD = b"sealmail/derive/v1"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap(kek: bytes, key: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return _WRAP_VERSION + nonce + AESGCM(kek).encrypt(nonce, key, aad)


def unwrap(kek: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + 12 + 16 or blob[:1] != _WRAP_VERSION:
        raise IntegrityError("wrapped key has an unknown format")
    try:
        return AESGCM(kek).decrypt(blob[1:13], blob[13:], aad)
    except InvalidTag:
        raise IntegrityError("wrapped key failed authentication") from None


def tenant_kek_aad(tenant_id: str, version: int) -> bytes:
    return f"sealmail/kek/v1\x00{tenant_id}\x00{version}".encode()


def data_key_aad(tenant_id: str, object_id: str) -> bytes:
    return f"sealmail/dek/v1\x00{tenant_id}\x00{object_id}".encode()


def hkdf(secret: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealmail/" + purpose.encode()
    ).derive(secret)


class RootKey(Protocol):
    @property
    def key_id(self) -> str: ...

    def wrap(self, key: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes: ...

    def derive(self, purpose: str) -> bytes: ...

    def check(self) -> None: ...

    def probe(self) -> None: ...

    @property
    def derivation_secret(self) -> bytes: ...


# --- small files: written whole (temp → fsync → rename → directory fsync), mode 0600 ----------


def fsync_dir(path: Path) -> None:
    dfd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_private(path: Path, what: str) -> bytes:
    """A key file's bytes; refused when others may read it."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found (run 'sealmail init')") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what} {path} is readable by others; chmod 600 it")
    return data


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def file_key_id(key: bytes) -> str:
    return "file:" + hashlib.sha256(b"sealmail-root-id" + key).hexdigest()[:16]


# --- the file root ---------------------------------------------------------------------------


class FileRootKey:
    """A 256-bit root key in a file readable only by its owner (mode 0600).

    Beside ``root.key`` may lie ``root.key.old-<id>`` (earlier roots, kept so that tenant
    KEKs still wrapped by them open during and after a rotation), ``root.key.next`` (a root
    rotation under way) and ``root.key.derive`` (the derivation secret, wrapped by one of
    them). ``wrap`` always uses the current ``root.key``; ``unwrap`` tries each.
    """

    def __init__(
        self,
        key: bytes,
        others: list[bytes] | None = None,
        derivation_secret: bytes | None = None,
    ) -> None:
        for k in (key, *(others or [])):
            if len(k) != KEY_SIZE:
                raise ConfigError("root key file must hold exactly 32 bytes")
        self._key = key
        self._others = [k for k in (others or []) if k != key]
        self._secret = derivation_secret if derivation_secret is not None else key
        self.key_id = file_key_id(key)
        self._path: Path | None = None  # set by load(): a running process follows rotations
        self._stamp: tuple[int, int] | None = None
        self._looked_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileRootKey({self.key_id})"

    @staticmethod
    def derive_path(path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        return p.with_name(p.name + ".derive")

    @staticmethod
    def next_path(path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        return p.with_name(p.name + ".next")

    @staticmethod
    def old_path(path: str | os.PathLike[str], key_id: str) -> Path:
        p = Path(path)
        return p.with_name(f"{p.name}.old-{key_id.removeprefix('file:')}")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FileRootKey:
        p = Path(path)
        key = read_private(p, "root key")
        if len(key) != KEY_SIZE:
            raise ConfigError(f"root key {p} must hold exactly 32 bytes")
        others: list[bytes] = []
        extra = sorted(p.parent.glob(p.name + ".old-*"))
        if cls.next_path(p).exists():
            extra.append(cls.next_path(p))
        for q in extra:
            data = read_private(q, "root key")
            if len(data) != KEY_SIZE:
                raise ConfigError(f"root key {q} must hold exactly 32 bytes")
            others.append(data)
        secret = None
        dpath = cls.derive_path(p)
        if dpath.exists():
            blob = read_private(dpath, "derivation secret")
            ring = cls(key, others)
            try:
                secret = ring.unwrap(blob, DERIVE_AAD)
            except IntegrityError:
                raise ConfigError(
                    f"derivation secret {dpath} does not open with the root key files beside it"
                ) from None
        elif any(p.parent.glob(p.name + ".old-*")):
            raise ConfigError(
                f"derivation secret {dpath} is missing (the root key was rotated; restore it)"
            )
        ring = cls(key, others, secret)
        ring._path = p
        ring._stamp = _file_stamp(p)
        return ring

    def _follow(self, force: bool) -> bool:
        """Pick up a root rotation made by ``sealmail key rotate`` in another process: when
        ``root.key`` was replaced (or, with ``force``, at most once a second when a blob
        opens with none of our keys), read the files again. The derivation secret stays
        as it is (rotation keeps it). Returns True when something new was read."""
        if self._path is None:
            return False
        with self._lock:
            return self._follow_locked(force)

    def _follow_locked(self, force: bool) -> bool:
        assert self._path is not None
        now = time.monotonic()
        stamp = _file_stamp(self._path)
        if stamp == self._stamp and (not force or now - self._looked_at < 1.0):
            return False
        self._looked_at = now
        try:
            fresh = FileRootKey.load(self._path)
        except ConfigError:
            return False  # mid-rotation or damaged: keep what we have
        known = [self._key, *self._others]
        self._key, self.key_id, self._stamp = fresh._key, fresh.key_id, stamp
        self._others = [k for k in [*fresh._others, *known] if k != self._key]
        self._others = list(dict.fromkeys(self._others))
        return True

    @staticmethod
    def create(path: str | os.PathLike[str]) -> bool:
        """Write a new root key unless one exists. Returns True if it wrote one."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(p.parent, 0o700)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(new_key())
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(p.parent)
        return True

    @property
    def derivation_secret(self) -> bytes:
        return self._secret

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        self._follow(force=False)  # never wrap with a root that was rotated away
        return wrap(self._key, key, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._unwrap(blob, aad)
        except IntegrityError:
            if not self._follow(force=True):
                raise
            return self._unwrap(blob, aad)

    def _unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return unwrap(self._key, blob, aad)
        except IntegrityError:
            for other in self._others:
                try:
                    return unwrap(other, blob, aad)
                except IntegrityError:
                    continue
            raise

    def wrapped_by(self, blob: bytes, aad: bytes) -> str:
        """The key id of the root file that opens ``blob`` (IntegrityError if none)."""
        for k in (self._key, *self._others):
            try:
                unwrap(k, blob, aad)
                return file_key_id(k)
            except IntegrityError:
                continue
        raise IntegrityError("wrapped key opens with no root key file")

    def derive(self, purpose: str) -> bytes:
        """A key for one purpose (HMAC of the loop stamp, ...), derived with HKDF-SHA256."""
        return hkdf(self._secret, purpose)

    def check(self) -> None:
        """Nothing to reach: the file was read at load."""

    def probe(self) -> None:
        """Readiness: nothing to reach."""


# --- the KMS root ----------------------------------------------------------------------------

_TRANSIENT_CODES = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "KMSInternalException",
    "DependencyTimeoutException",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
}
_CONFIG_CODES = {
    "NotFoundException",
    "DisabledException",
    "KMSInvalidStateException",
    "AccessDeniedException",
    "AccessDenied",
    "InvalidKeyUsageException",
    "IncorrectKeyException",
    "KeyUnavailableException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "InvalidArnException",
    "ValidationException",
}


def kms_context(aad: bytes) -> dict[str, str]:
    """The KMS encryption context that carries our associated data."""
    return {"sealmail-aad": aad.hex()}


class KmsRootKey:
    """The root key is a symmetric key in AWS KMS: tenant KEKs are wrapped with KMS
    ``Encrypt`` (``Decrypt`` to open, ``ReEncrypt`` on rotation), our associated data in the
    encryption context. Nothing is called at construction; the first use checks the key
    (``DescribeKey``) and opens the derivation secret.

    Errors: unreachable, throttled or KMS-internal → :class:`TransientError`; a key that is
    missing, disabled, of the wrong kind or not ours to use → :class:`ConfigError` naming
    it; a ciphertext KMS refuses → :class:`IntegrityError`.
    """

    def __init__(
        self,
        key: str,
        *,
        endpoint_url: str = "",
        region: str = "",
        derive_path: str | os.PathLike[str] | None = None,
        client: Any = None,
        secret_loader: Callable[[], bytes] | None = None,
    ) -> None:
        if not key:
            raise ConfigError("root_key aws-kms:// needs a key id, ARN or alias/...")
        self.key = key
        self.endpoint_url = endpoint_url
        self.region = region or _region_from_arn(key)
        self._derive_path = Path(derive_path) if derive_path else None
        # where the wrapped derivation secret comes from: the database (core.rootsecret, set
        # by open_root_key), else the file at derive_path
        self._secret_loader = secret_loader
        self._client = client
        self._arn: str | None = None
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KmsRootKey(aws-kms://{self.key})"

    @property
    def uri(self) -> str:
        return f"aws-kms://{self.key}"

    # -- the client and error translation --

    def client(self) -> Any:
        if self._client is None:
            from botocore.config import Config

            from core.aws import new_session

            session = new_session()
            self._client = session.client(
                "kms",
                endpoint_url=self.endpoint_url or None,
                region_name=self.region or session.region_name or "us-east-1",
                config=Config(
                    connect_timeout=5,
                    read_timeout=15,
                    retries={"max_attempts": 4, "mode": "standard"},
                ),
            )
        return self._client

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            result: dict[str, Any] = getattr(self.client(), op)(**kwargs)
            return result
        except NoCredentialsError:
            raise ConfigError(
                f"root key {self.uri}: no AWS credentials (set them in the standard AWS chain)"
            ) from None
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            msg = str(err.get("Message", "")).splitlines()[0] if err.get("Message") else code
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code == "InvalidCiphertextException":
                raise IntegrityError(f"KMS refused a wrapped key ({self.uri})") from None
            if code in _TRANSIENT_CODES or status >= 500:
                raise TransientError(f"KMS {op} failed for {self.uri}: {code}") from None
            if code in _CONFIG_CODES or 400 <= status < 500:
                raise ConfigError(f"root key {self.uri}: {code}: {msg}") from None
            raise TransientError(f"KMS {op} failed for {self.uri}: {code}") from None
        except BotoCoreError as exc:
            raise TransientError(f"KMS unreachable for {self.uri}: {exc}") from None

    # -- the RootKey protocol --

    def check(self) -> None:
        """Make sure the key exists, is enabled and encrypts; open the derivation secret."""
        self._describe()
        self._derivation_secret()

    def check_key(self) -> None:
        """Make sure the key exists, is enabled and is a symmetric encryption key."""
        self._describe()

    def probe(self) -> None:
        """Readiness: KMS answers now and the key is still enabled (no cached answer)."""
        meta = self._call("describe_key", KeyId=self.key)["KeyMetadata"]
        state = meta.get("KeyState", "Enabled" if meta.get("Enabled") else "Disabled")
        if state != "Enabled":
            raise ConfigError(f"root key {self.uri} is {state} in KMS")

    def _describe(self) -> str:
        if self._arn is None:
            meta = self._call("describe_key", KeyId=self.key)["KeyMetadata"]
            state = meta.get("KeyState", "Enabled" if meta.get("Enabled") else "Disabled")
            if state != "Enabled":
                raise ConfigError(f"root key {self.uri} is {state} in KMS")
            if meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
                raise ConfigError(f"root key {self.uri} is not an encryption key")
            spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
            if spec != "SYMMETRIC_DEFAULT":
                raise ConfigError(f"root key {self.uri} is {spec}; a symmetric key is needed")
            self._arn = str(meta["Arn"])
        return self._arn

    @property
    def key_id(self) -> str:
        return "aws-kms:" + self._describe()

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        out = self._call(
            "encrypt", KeyId=self.key, Plaintext=key, EncryptionContext=kms_context(aad)
        )
        return _KMS_WRAP_VERSION + bytes(out["CiphertextBlob"])

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 2 or blob[:1] != _KMS_WRAP_VERSION:
            raise IntegrityError("wrapped key is not a KMS ciphertext (wrapped by a file root?)")
        out = self._call("decrypt", CiphertextBlob=blob[1:], EncryptionContext=kms_context(aad))
        return bytes(out["Plaintext"])

    def rewrap(self, blob: bytes, aad: bytes, destination: str | None = None) -> tuple[bytes, str]:
        """``blob`` re-encrypted inside KMS under ``destination`` (default: this key), and
        the ``aws-kms:<arn>`` id that now wraps it. The plaintext never leaves KMS."""
        if len(blob) < 2 or blob[:1] != _KMS_WRAP_VERSION:
            raise IntegrityError("wrapped key is not a KMS ciphertext")
        ctx = kms_context(aad)
        out = self._call(
            "re_encrypt",
            CiphertextBlob=blob[1:],
            SourceEncryptionContext=ctx,
            DestinationKeyId=destination or self.key,
            DestinationEncryptionContext=ctx,
        )
        return _KMS_WRAP_VERSION + bytes(out["CiphertextBlob"]), "aws-kms:" + str(out["KeyId"])

    def wrapped_by(self, blob: bytes, aad: bytes) -> str:
        out = self._call("decrypt", CiphertextBlob=blob[1:], EncryptionContext=kms_context(aad))
        return "aws-kms:" + str(out["KeyId"])

    @property
    def derive_file(self) -> Path:
        if self._derive_path is None:
            raise ConfigError(f"root key {self.uri}: no place for the derivation secret")
        return self._derive_path

    def create_derivation_secret(self) -> bool:
        """Generate the derivation secret, wrapped by this key, unless the file exists."""
        path = self.derive_file
        if path.exists():
            return False
        self._describe()
        write_private(path, self.wrap(new_key(), DERIVE_AAD))
        return True

    def _derivation_secret(self) -> bytes:
        with self._lock:
            if self._secret is None and self._secret_loader is not None:
                blob = self._secret_loader()
                try:
                    self._secret = self.unwrap(blob, DERIVE_AAD)
                except IntegrityError:
                    raise ConfigError(
                        f"the derivation secret in the database does not open with {self.uri}"
                    ) from None
            if self._secret is None:
                path = self.derive_file
                if not path.exists():
                    raise ConfigError(
                        f"derivation secret {path} not found: run 'sealmail init' once with "
                        f"this root key, or copy the file from another host"
                    )
                blob = read_private(path, "derivation secret")
                try:
                    self._secret = self.unwrap(blob, DERIVE_AAD)
                except IntegrityError:
                    raise ConfigError(
                        f"derivation secret {path} does not open with {self.uri}"
                    ) from None
            return self._secret

    @property
    def derivation_secret(self) -> bytes:
        return self._derivation_secret()

    def derive(self, purpose: str) -> bytes:
        return hkdf(self._derivation_secret(), purpose)


def _region_from_arn(key: str) -> str:
    parts = key.split(":")
    if key.startswith("arn:") and len(parts) > 3:
        return parts[3]
    return ""


def kms_key_of(uri: str) -> str:
    if not uri.startswith("aws-kms://"):
        raise ConfigError(f"{uri!r}: expected aws-kms://<key id, ARN or alias/...>")
    key = uri[len("aws-kms://") :]
    if not key or any(c.isspace() for c in key):
        raise ConfigError(f"{uri!r}: expected aws-kms://<key id, ARN or alias/...>")
    return key


def load_root_key(
    uri: str, *, kms_endpoint_url: str = "", region: str = "", data_dir: str = ""
) -> RootKey:
    """The root key named by ``uri``. No network: a KMS key is reached on first use."""
    if uri.startswith("file://"):
        return FileRootKey.load(uri[len("file://") :])
    if uri.startswith("aws-kms://"):
        return KmsRootKey(
            kms_key_of(uri),
            endpoint_url=kms_endpoint_url,
            region=region,
            derive_path=kms_derive_path(data_dir) if data_dir else None,
        )
    raise ConfigError(f"root_key {uri!r}: expected file:// or aws-kms://")


def kms_derive_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where a KMS root's wrapped derivation secret is kept."""
    return Path(data_dir) / "keys" / "kms-root.derive"


def open_root_key(settings: Settings) -> RootKey:
    """The configured root key (no network calls). A KMS root reads its derivation secret
    from the database on first use (``core.rootsecret``), importing the older
    ``keys/kms-root.derive`` file if the database has none yet."""
    root = load_root_key(
        settings.root_key,
        kms_endpoint_url=settings.kms_endpoint_url,
        region="",
        data_dir=settings.data_dir,
    )
    if isinstance(root, KmsRootKey):
        from core import rootsecret

        url = settings.database_url
        legacy = kms_derive_path(settings.data_dir) if settings.data_dir else None
        kms = root
        root._secret_loader = lambda: rootsecret.load_blocking(url, kms, legacy)
    return root


def hmac_sha256(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()
