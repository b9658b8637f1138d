"""A database made by the previous version migrates and keeps working.

The previous version is the commit before the package restructuring (issue 10), taken from
this repository's history with ``git archive`` and run with ``PYTHONPATH`` on its tree. It
makes a working directory and seals two messages to the portal over real SMTP; then the
checkout under test runs ``sealmail migrate`` and ``sealmail serve`` on the same directory,
and the recipient opens the old messages over HTTP (link, code by mail, message page,
attachment download); ``archive search`` finds them and ``archive verify`` passes.

Only the external contract is used (CLI, config keys, SMTP, URLs), so the test does not
depend on module paths inside either version.
"""

from __future__ import annotations

import html
import io
import json
import re
import secrets
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_code, find_link, make_message, parse, send
from tests.helpers.smtp_sink import SmtpSink

PREVIOUS_VERSION = "cc50ccb117f624c391f29c0014e0e109792b4327"
REPO_ROOT = Path(__file__).resolve().parents[2]
HTTP_TIMEOUT = 30
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def extract_version(sha: str, into: Path) -> Path:
    """``git archive <sha>`` of this repository, extracted under ``into``."""
    found = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{sha}^{{commit}}"],
        capture_output=True,
        timeout=60,
    )
    if found.returncode != 0:
        pytest.fail(
            f"the previous version's commit {sha} is not in the repository at {REPO_ROOT} "
            "(a shallow clone? fetch the full history: git fetch --unshallow)"
        )
    archived = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", sha],
        capture_output=True,
        timeout=120,
        check=True,
    )
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archived.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def use_code_from(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``python -m sealmail`` started from now on runs the code in ``tree``.

    ``PYTHONSAFEPATH`` keeps the current directory off ``sys.path``, so ``PYTHONPATH`` alone
    decides (the project's editable install comes after it)."""
    monkeypatch.setenv("PYTHONPATH", str(tree))
    monkeypatch.setenv("PYTHONSAFEPATH", "1")
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sealmail, portal; print(sealmail.__file__, portal.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    for path in where:
        assert Path(path).resolve().is_relative_to(tree.resolve()), (path, tree)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Visitor:
    """A recipient's browser over plain HTTP: the portal's cookies are ``Secure``, which a
    cookie jar would not send to ``http://127.0.0.1``, so they are kept here by name."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies: dict[str, str] = {}
        self._opener = urllib.request.build_opener(_NoRedirects)

    def request(
        self, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Origin": self.base_url} if form is not None else {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            resp = self._opener.open(req, timeout=HTTP_TIMEOUT)
        except urllib.error.HTTPError as err:
            resp = err
        with resp:
            body = resp.read()
            for line in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = line.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return resp.status, dict(resp.headers.items()), body


def open_in_portal(
    product: Product, sink: SmtpSink, link: str, recipient: str
) -> tuple[Visitor, str, str]:
    """Link -> code by mail -> verified session: the signed-in visitor, the message page's
    path and its HTML."""
    path = link.removeprefix(product.portal_url)
    visitor = Visitor(product.portal_url)
    status, _, page = visitor.request(path)
    assert status == 200, page[:2000]
    found = _CSRF.search(page.decode())
    assert found, "no CSRF field on the entry page"
    csrf = html.unescape(found.group(1))
    seen = {id(m) for m in sink.messages}
    status, _, page = visitor.request(f"{path}/code", {"csrf": csrf})
    assert status == 200, page[:2000]
    code_mail = sink.wait_for(lambda m: recipient in m.rcpt_tos and id(m) not in seen)[-1]
    status, headers, page = visitor.request(
        f"{path}/verify", {"csrf": csrf, "code": find_code(code_mail.data)}
    )
    assert status == 303, page[:2000]
    message_path = headers["location"].removeprefix(product.portal_url)
    assert re.fullmatch(r"/messages/[^/?#]+", message_path), message_path
    status, _, page = visitor.request(message_path)
    assert status == 200, page[:2000]
    return visitor, message_path, page.decode()  # a text/plain body is shown on the page


@pytest.mark.e2e
def test_previous_versions_data_opens_after_migrate(
    sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_tree = extract_version(PREVIOUS_VERSION, tmp_path / "previous")
    product = Product(tmp_path / "sealmail", sink.port)

    # --- the previous version makes the working directory and seals two messages ---------
    use_code_from(old_tree, monkeypatch)
    product.init(worker_processes=None)  # a key the previous version does not know
    tenant = product.create_tenant("Acme", "acme.example")
    marker_body = "MARKER-BODY-" + secrets.token_hex(8)
    marker_file = "MARKER-FILE-" + secrets.token_hex(8)
    pdf = b"%PDF-1.4\n" + secrets.token_bytes(40_000) + marker_file.encode()
    sealed = make_message(
        "[secure] Heron quarterly numbers",
        f"Dear Bob,\n\nthe numbers: {marker_body}\n\nAlice",
    )
    with_file = make_message(
        "[secure] Heron contract",
        f"Carol, the contract is attached. {marker_file}",
        to="carol@recipient.test",
        attachments=[("contract.pdf", "application/pdf", pdf)],
    )
    product.start()
    try:
        user, password = tenant["smtp_username"], tenant["smtp_password"]
        for msg in (sealed, with_file):
            reply = send(product.smtp_port, msg, user, password)
            assert re.match(r"2\.0\.0 queued as \S+", reply), reply
        links = {}
        for rcpt in ("bob@recipient.test", "carol@recipient.test"):
            note = sink.wait_for(lambda m, r=rcpt: r in m.rcpt_tos, timeout=60)[0]
            assert "[secure]" not in str(parse(note.data)["Subject"])
            links[rcpt] = find_link(note.data, product.portal_url)
    finally:
        assert product.stop() == 0, product.logs()[-3000:]

    # --- the checkout under test: migrate, serve, and the old messages open --------------
    use_code_from(REPO_ROOT, monkeypatch)
    product.cli("migrate")
    product.start()
    try:
        bob = "bob@recipient.test"
        visitor, message_path, page = open_in_portal(product, sink, links[bob], bob)
        assert "Heron quarterly numbers" in page and "[secure]" not in page
        assert marker_body in html.unescape(page)

        carol = "carol@recipient.test"
        visitor, message_path, page = open_in_portal(product, sink, links[carol], carol)
        assert "Heron contract" in page
        assert marker_file in html.unescape(page)
        files = re.findall(
            rf'href="({re.escape(message_path)}/attachments/[^"]+)"[^>]*>([^<]+)</a>', page
        )
        assert [name.strip() for _, name in files] == ["contract.pdf"], files
        status, _, data = visitor.request(files[0][0])
        assert status == 200 and data == pdf

        found = json.loads(
            product.cli("archive", "search", "Acme", "--subject", "Heron contract", "--json").stdout
        )
        assert found["total"] == 1, found
        (hit,) = found["items"]
        assert hit["decision"] == "portal" and hit["attachments"] == ["contract.pdf"], hit
        verified = product.cli("archive", "verify", "--json")
        report = json.loads(verified.stdout)
        assert report["checked"] >= 2 and report["damaged"] == [], report
    finally:
        assert product.stop() == 0, product.logs()[-3000:]
