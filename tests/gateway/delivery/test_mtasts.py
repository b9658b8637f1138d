"""MTA-STS (RFC 8461): the policy parser, the cached look-up, and delivery in mx mode.

The policy is served by a loopback HTTPS server with a certificate from a test CA (the
gateway trusts it through ``relay_tls_ca_file``); ``sts_url_for`` points the fetch there.
DNS is the loopback server of ``test_nexthop``.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.gateway.delivery.test_nexthop as nexthop_tests
from core.errors import TransientError
from core.services import Services
from gateway.delivery.mtasts import MtaSts, Policy, parse_policy, parse_txt
from tests.gateway.conftest import write_self_signed
from tests.gateway.delivery.test_nexthop import (
    FakeDns,
    MxFarm,
    deliver,
    mx_settings,
    queue,
    server_tls,
    states,
    write_pki,
)

pytestmark = pytest.mark.timeout(60)

fake_dns = nexthop_tests.fake_dns  # the loopback DNS server and MX sinks, as fixtures here
farm = nexthop_tests.farm

POLICY = (
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.partner.example\r\n"
    "mx: *.backup.example\r\nmax_age: 86400\r\n"
)


# --- the parser -----------------------------------------------------------------------------


def test_parse_policy() -> None:
    policy = parse_policy(POLICY)
    assert (policy.mode, policy.max_age) == ("enforce", 86400)
    assert policy.mx == ("mx1.partner.example", "*.backup.example")
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 0\n").mode == "none"


@pytest.mark.parametrize(
    "text",
    [
        "mode: enforce\nmx: a.example\nmax_age: 1\n",  # no version
        "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",  # no mx
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: forever\n",
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 99999999999\n",
        "<html>not a policy</html>",
    ],
)
def test_parse_policy_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_policy(text)


def test_mx_patterns() -> None:
    policy = Policy(mode="enforce", mx=("mx1.partner.example", "*.backup.example"), max_age=1)
    assert policy.matches("mx1.partner.example")
    assert policy.matches("MX1.Partner.Example.")
    assert policy.matches("a.backup.example")
    assert not policy.matches("backup.example")  # the wildcard needs one label
    assert not policy.matches("a.b.backup.example")  # and only one
    assert not policy.matches("mx2.partner.example")
    assert not policy.matches("evil-mx1.partner.example")


def test_parse_txt() -> None:
    assert parse_txt(["v=STSv1; id=20240101T000000"]) == "20240101T000000"
    assert parse_txt(["v=spf1 -all", "v=STSv1; id=abc;"]) == "abc"
    assert parse_txt([]) is None
    assert parse_txt(["v=STSv1; id=a", "v=STSv1; id=b"]) is None  # two: no policy
    assert parse_txt(["v=STSv1; id=not-alnum!"]) is None


# --- a policy server ------------------------------------------------------------------------


class PolicyServer:
    def __init__(self, cert: str, key: str) -> None:
        self.body = POLICY
        self.status = 200
        self.content_type = "text/plain"
        self.hits = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.hits += 1
                if self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                data = owner.body.encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(data)))
                if owner.status in (301, 302):
                    self.send_header("Location", "https://127.0.0.1:1/elsewhere")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = server_tls(cert, key).wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url_for(self, url: str) -> str:
        assert url == "https://mta-sts.partner.example/.well-known/mta-sts.txt", url
        return f"https://127.0.0.1:{self.port}/.well-known/mta-sts.txt"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pki(tmp_path: Path) -> tuple[str, str, str]:
    return write_pki(tmp_path / "pki", ["mx1.partner.example", "mta-sts.partner.example"])


@pytest.fixture
def policy_server(pki) -> Iterator[PolicyServer]:  # noqa: ANN001
    _ca, cert, key = pki
    server = PolicyServer(cert, key)
    yield server
    server.close()


def _ca_context(ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=ca)
    return ctx


class Txt:
    def __init__(self, *records: str) -> None:
        self.records = list(records)
        self.fail = False

    async def __call__(self, name: str) -> list[str]:
        assert name == "_mta-sts.partner.example"
        if self.fail:
            raise TransientError("DNS down")
        return list(self.records)


async def test_policy_cached_until_the_id_changes(pki, policy_server: PolicyServer) -> None:  # noqa: ANN001
    clock = [1000.0]
    txt = Txt("v=STSv1; id=one")
    sts = MtaSts(
        txt, url_for=policy_server.url_for, context=_ca_context(pki[0]), clock=lambda: clock[0]
    )
    first = await sts.policy("partner.example")
    assert first is not None and first.mode == "enforce" and first.id == "one"
    assert await sts.policy("Partner.Example.") == first
    assert policy_server.hits == 1  # same id: the cached policy
    txt.fail = True
    assert await sts.policy("partner.example") == first  # DNS down: the cache holds
    txt.fail = False
    txt.records = []
    assert await sts.policy("partner.example") == first  # TXT gone: the cache still holds
    txt.records = ["v=STSv1; id=two"]
    policy_server.body = POLICY.replace("enforce", "testing")
    second = await sts.policy("partner.example")
    assert second is not None and second.mode == "testing" and policy_server.hits == 2
    clock[0] += 86401  # max_age passed
    txt.records = []
    assert await sts.policy("partner.example") is None


async def test_policy_fetch_failures_mean_no_policy(pki, policy_server: PolicyServer) -> None:  # noqa: ANN001
    txt = Txt("v=STSv1; id=one")
    sts = MtaSts(txt, url_for=policy_server.url_for, context=_ca_context(pki[0]))
    policy_server.status = 404
    assert await sts.policy("partner.example") is None
    policy_server.status = 302  # redirects are not followed
    assert await sts.policy("partner.example") is None
    policy_server.status, policy_server.content_type = 200, "text/html"
    assert await sts.policy("partner.example") is None
    policy_server.content_type = "text/plain"
    untrusting = MtaSts(txt, url_for=policy_server.url_for, context=ssl.create_default_context())
    assert await untrusting.policy("partner.example") is None  # certificate not verified
    assert await sts.policy("partner.example") is not None


# --- delivery in mx mode --------------------------------------------------------------------


async def _services(tmp_path: Path, db_url: str, fake: FakeDns, farm: MxFarm, ca: str) -> Services:
    fake.add("partner.example", "MX", "10 mx1.partner.example.")
    fake.add("mx1.partner.example", "A", "127.0.0.2")
    fake.add("_mta-sts.partner.example", "TXT", '"v=STSv1; id=20240101"')
    return Services.open(mx_settings(tmp_path, db_url, fake, farm.port, relay_tls_ca_file=ca))


async def test_enforce_delivers_over_verified_tls(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm, pki, policy_server
) -> None:  # noqa: ANN001
    ca, cert, key = pki
    sink = await farm.start("127.0.0.2", server_tls(cert, key))
    services = await _services(tmp_path, db_url, fake_dns, farm, ca)
    try:
        item = await queue(services, ["bob@partner.example"])
        await deliver(services, sts_url_for=policy_server.url_for)
        assert sink.tls == [True] and len(sink.messages) == 1
        assert (await states(services, item))["bob@partner.example"][0] == "sent"
        assert policy_server.hits == 1
    finally:
        await services.close()


async def test_enforce_host_not_in_policy_defers(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm, pki, policy_server
) -> None:  # noqa: ANN001
    ca, cert, key = pki
    sink = await farm.start("127.0.0.2", server_tls(cert, key))
    policy_server.body = POLICY.replace("mx: mx1.partner.example", "mx: mail.elsewhere.example")
    services = await _services(tmp_path, db_url, fake_dns, farm, ca)
    try:
        item = await queue(services, ["bob@partner.example"])
        await deliver(services, sts_url_for=policy_server.url_for)
        assert sink.messages == []
        state, reply = (await states(services, item))["bob@partner.example"]
        assert state == "deferred" and "MTA-STS" in reply
    finally:
        await services.close()


async def test_enforce_without_starttls_defers(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm, pki, policy_server
) -> None:  # noqa: ANN001
    ca, _cert, _key = pki
    sink = await farm.start("127.0.0.2")  # no STARTTLS
    services = await _services(tmp_path, db_url, fake_dns, farm, ca)
    try:
        item = await queue(services, ["bob@partner.example"])
        await deliver(services, sts_url_for=policy_server.url_for)
        assert sink.messages == []  # never in clear
        assert (await states(services, item))["bob@partner.example"][0] == "deferred"
    finally:
        await services.close()


async def test_enforce_with_untrusted_certificate_defers(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm, pki, policy_server
) -> None:  # noqa: ANN001
    ca, _cert, _key = pki
    sink = await farm.start("127.0.0.2", server_tls(*write_self_signed(tmp_path / "self")))
    services = await _services(tmp_path, db_url, fake_dns, farm, ca)
    try:
        item = await queue(services, ["bob@partner.example"])
        await deliver(services, sts_url_for=policy_server.url_for)
        assert sink.messages == []
        assert (await states(services, item))["bob@partner.example"][0] == "deferred"
    finally:
        await services.close()


async def test_enforce_with_require_tls_reroutes(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm, pki, policy_server
) -> None:  # noqa: ANN001
    """require_tls in mx mode honours MTA-STS too: no listed host, no clear copy."""
    ca, cert, key = pki
    sink = await farm.start("127.0.0.2", server_tls(cert, key))
    policy_server.body = POLICY.replace("mx: mx1.partner.example", "mx: mail.elsewhere.example")
    services = await _services(tmp_path, db_url, fake_dns, farm, ca)
    try:
        item = await queue(services, ["bob@partner.example"], require_tls=True)
        await deliver(services, sts_url_for=policy_server.url_for)
        assert sink.messages == []
        assert (await states(services, item))["bob@partner.example"][0] == "rerouted"
    finally:
        await services.close()


async def test_testing_mode_only_reports(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm, pki, policy_server, caplog
) -> None:  # noqa: ANN001
    ca, _cert, _key = pki
    sink = await farm.start("127.0.0.2")  # no STARTTLS, and not in the policy
    policy_server.body = POLICY.replace("enforce", "testing").replace(
        "mx: mx1.partner.example", "mx: mail.elsewhere.example"
    )
    services = await _services(tmp_path, db_url, fake_dns, farm, ca)
    try:
        item = await queue(services, ["bob@partner.example"])
        await deliver(services, sts_url_for=policy_server.url_for)
        assert len(sink.messages) == 1
        assert (await states(services, item))["bob@partner.example"][0] == "sent"
        assert any("MTA-STS (testing)" in r.getMessage() for r in caplog.records)
    finally:
        await services.close()


async def test_no_policy_published_delivers(
    tmp_path: Path, db_url: str, fake_dns: FakeDns, farm: MxFarm, pki, policy_server
) -> None:  # noqa: ANN001
    ca, _cert, _key = pki
    sink = await farm.start("127.0.0.2")
    fake_dns.add("partner.example", "MX", "10 mx1.partner.example.")
    fake_dns.add("mx1.partner.example", "A", "127.0.0.2")
    services = Services.open(
        mx_settings(tmp_path, db_url, fake_dns, farm.port, relay_tls_ca_file=ca)
    )
    try:
        await queue(services, ["bob@partner.example"])
        await deliver(services, sts_url_for=policy_server.url_for)
        assert len(sink.messages) == 1 and policy_server.hits == 0
    finally:
        await services.close()
