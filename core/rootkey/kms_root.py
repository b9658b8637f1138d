"""The KMS root: the root key is a symmetric key in AWS KMS; KMS errors become the project's
(unreachable or throttled: TransientError; missing or disabled key: ConfigError).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.aead import new_key
from core.errors import ConfigError, IntegrityError, TransientError
from core.hashing import hkdf
from core.private_files import read_private, write_private
from core.rootkey.protocol import DERIVE_AAD

_KMS_WRAP_VERSION = b"\x81"

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
        # where the wrapped derivation secret comes from: the database
        # (core.rootkey.kms_derivation_secret, set by open_root_key), else the file at
        # derive_path
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
