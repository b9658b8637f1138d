"""WKD against a loopback HTTPS server with a test CA: found, not found, cached, and a
server whose certificate does not verify."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core import recipient_keys
from core.accounts.tenants import get_tenant
from core.services import Services
from gateway.models import KeyLookup
from gateway.pipeline.crypto import wkd
from tests.helpers import keygen
from tests.helpers.keygen import PgpKeys
from tests.portal.conftest import make_tenant

pgp_keys = keygen.pgp_keys  # session fixture


def test_zbase32_hash_matches_the_draft() -> None:
    advanced, direct = wkd.wkd_urls("Joe.Doe@Example.ORG")
    assert advanced == (
        "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/"
        "iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
    )
    assert direct.startswith("https://example.org/.well-known/openpgpkey/hu/iy9q119eu")


class Server:
    def __init__(self, tmp: Path) -> None:
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WKD test CA")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                body = outer.files.get(urlsplit(self.path).path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
        self.httpd.socket = server_ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.client_ctx = ssl.create_default_context(cafile=str(tmp / "cert.pem"))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url_for(self, url: str) -> str:
        parts = urlsplit(url)
        prefix = (
            "/adv" if parts.hostname and parts.hostname.startswith("openpgpkey.") else "/direct"
        )
        return f"{self.base}{prefix}{parts.path}?{parts.query}"

    def publish(self, email: str, data: bytes, method: str = "direct") -> None:
        advanced, direct = wkd.wkd_urls(email)
        url = advanced if method == "adv" else direct
        self.files[urlsplit(self.url_for(url)).path] = data

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.close()


async def test_lookup_direct_and_advanced(server: Server, pgp_keys: PgpKeys) -> None:
    server.publish("bob@recipient.test", pgp_keys.public["bob"], "adv")
    server.publish("ed@recipient.test", pgp_keys.public["ed"], "direct")
    kw = {"url_for": server.url_for, "context": server.client_ctx}
    assert await wkd.wkd_lookup("bob@recipient.test", **kw) == pgp_keys.public["bob"]
    assert await wkd.wkd_lookup("ed@recipient.test", **kw) == pgp_keys.public["ed"]
    assert [p.split("/")[1] for p in server.requests] == ["adv", "adv", "direct"]
    assert server.requests[0].endswith("?l=bob")
    assert await wkd.wkd_lookup("nobody@recipient.test", **kw) is None
    with pytest.raises(wkd.TransientError):  # default trust store: the test CA is unknown
        await wkd.wkd_lookup("bob@recipient.test", url_for=server.url_for)


async def test_lookup_and_store_found_not_found_cached(
    services: Services, server: Server, pgp_keys: PgpKeys
) -> None:
    tid = await make_tenant(services, "Acme", "acme.example", wkd_lookup=True)
    off = await make_tenant(services, "Off", "off.example")
    server.publish("bob@recipient.test", pgp_keys.public["bob"])
    server.publish("revoked@recipient.test", pgp_keys.public["revoked"])
    server.publish("ed@recipient.test", pgp_keys.public["bob"])  # someone else's key
    kw = {"url_for": server.url_for, "context": server.client_ctx}
    async with services.db.session() as s:
        tenant = await get_tenant(s, tid)
        disabled = await get_tenant(s, off)
        assert tenant is not None and disabled is not None

        assert not await wkd.lookup_and_store(services, s, disabled, "bob@recipient.test", **kw)
        assert server.requests == []

        assert await wkd.lookup_and_store(services, s, tenant, "Bob@recipient.test", **kw)
        await s.commit()
        rows = await recipient_keys.list_keys(s, tid)
        assert [(r.email, r.source) for r in rows] == [("bob@recipient.test", "wkd")]
        asked = len(server.requests)
        assert await wkd.lookup_and_store(services, s, tenant, "bob@recipient.test", **kw)
        assert len(server.requests) == asked  # the directory has it now

        for email in ("nobody@recipient.test", "revoked@recipient.test", "ed@recipient.test"):
            assert not await wkd.lookup_and_store(services, s, tenant, email, **kw)
        await s.commit()
        asked = len(server.requests)
        assert not await wkd.lookup_and_store(services, s, tenant, "nobody@recipient.test", **kw)
        assert len(server.requests) == asked  # cached "not found"
        cached = await s.get(KeyLookup, "nobody@recipient.test")
        assert cached is not None and cached.found is False
        assert [r.email for r in await recipient_keys.list_keys(s, tid)] == ["bob@recipient.test"]

        cached.checked_at -= wkd.CACHE_SECONDS + 1  # expired: asked again
        assert not await wkd.lookup_and_store(services, s, tenant, "nobody@recipient.test", **kw)
        assert len(server.requests) > asked

        # a network failure is not cached
        assert not await wkd.lookup_and_store(
            services, s, tenant, "carol@recipient.test", url_for=server.url_for
        )
        assert await s.get(KeyLookup, "carol@recipient.test") is None
