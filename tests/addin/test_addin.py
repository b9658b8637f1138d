"""The Outlook add-in against the running product (``sealmail serve``): both manifests
fetched from the portal and checked by Microsoft's own tools (``office-addin-manifest
validate`` offline on the unified manifest and on the XML manifest converted by
``office-addin-manifest-converter``; ``office-addin-manifest info`` parsing the XML), every
URL they name answering 200; the add-in's own ``commands.js`` run by ``node --test`` with
Microsoft's Office.js mock against the portal, with user tokens got through the mailed-code
flow; the pages' framing policy; a user token never crossing tenants."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Product
from tests.e2e.mail import find_code
from tests.e2e.test_conversations import browser  # noqa: F401
from tests.helpers.pages import look_at
from tests.helpers.smtp_sink import SmtpSink

JS = Path(__file__).parent / "js"
TOOLS = JS / "node_modules" / ".bin"
ALICE = "alice@acme.example"
ADMIN = "admin@acme.example"
OLIVER = "oliver@other.example"
POLICY = (
    "rules:\n"
    "  - name: cards\n"
    "    when: {detector: credit_card}\n"
    "    action: encrypt\n"
    "    method: auto\n"
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("CI")  # in CI scripts/test.sh installs them: missing is a failure
        and (shutil.which("node") is None or not (TOOLS / "office-addin-manifest").exists()),
        reason="node and tests/addin/js/node_modules (scripts/test.sh installs them)",
    ),
]


class Live:
    def __init__(self, product: Product, sink: SmtpSink, tenants: dict[str, str]) -> None:
        self.product, self.sink, self.tenants = product, sink, tenants
        self.url = product.portal_url
        self.api_key = ""

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def token_for(self, email: str) -> str:
        seen = {id(m) for m in self.sink.messages}
        status, _, body = self.request("POST", "/addin/api/code", {"email": email})
        assert status == 200, body
        pending = json.loads(body)["pending"]
        mail = self.sink.wait_for(lambda m: email in m.rcpt_tos and id(m) not in seen, timeout=60)
        code = find_code(mail[-1].data)
        status, _, body = self.request(
            "POST", "/addin/api/token", {"pending": pending, "code": code}
        )
        assert status == 200, body
        answer = json.loads(body)
        assert answer["email"] == email
        return str(answer["token"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with SmtpSink() as sink:
        product = Product(tmp_path_factory.mktemp("addin") / "sealmail", sink.port)
        try:
            product.init()
            acme = product.create_tenant("Acme", "acme.example")
            other = product.create_tenant("Other", "other.example")
            policy = product.root / "policy.yaml"
            policy.write_text(POLICY)
            product.cli("policy", "import", "Acme", str(policy))
            product.cli("user", "add", "Acme", ADMIN, "--role", "admin")
            product.start()
            live = Live(product, sink, {"acme": acme["id"], "other": other["id"]})
            live.api_key = acme["api_key"]
            yield live
        finally:
            product.stop()
            Product.live.clear()


def _local(live: Live, url: str) -> str:
    """A manifest's https URL on the test portal (plain HTTP on loopback)."""
    https = "https://" + live.url.removeprefix("http://")
    url = url + "/" if url == https else url  # AppDomain: the origin
    assert url.startswith(https + "/"), url
    return live.url + url[len(https) :]


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_manifests_validate_and_every_url_answers(live: Live, tmp_path: Path) -> None:
    tenant = live.tenants["acme"]
    status, headers, xml = live.request("GET", f"/addin/manifest.xml?tenant={tenant}")
    assert status == 200 and headers["content-type"].startswith("application/xml")
    status, _, raw_json = live.request("GET", f"/addin/manifest.json?tenant={tenant}")
    assert status == 200
    (tmp_path / "manifest.xml").write_bytes(xml)
    (tmp_path / "manifest.json").write_bytes(raw_json)
    manifest = json.loads(raw_json)

    # the unified manifest: Microsoft's validator, offline on its bundled schemas
    got = _run(TOOLS / "office-addin-manifest", "validate", "manifest.json", cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    # the XML manifest: parsed by Microsoft's tool, then converted and validated the same way
    got = _run(TOOLS / "office-addin-manifest", "info", "manifest.xml", cwd=tmp_path)
    assert got.returncode == 0 and "Send Secure" in got.stdout, got.stdout + got.stderr
    assert manifest["id"] in got.stdout
    out = tmp_path / "converted"
    got = _run(
        TOOLS / "office-addin-manifest-converter", "convert", "manifest.xml", "-o", out,
        cwd=tmp_path,
    )  # fmt: skip
    assert "error" not in (got.stdout + got.stderr).lower(), got.stdout + got.stderr
    converted = out / "manifest.json"
    assert converted.exists(), got.stdout + got.stderr
    got = _run(TOOLS / "office-addin-manifest", "validate", converted, cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert json.loads(converted.read_text())["id"] == manifest["id"]

    # every URL either names answers 200 (the icons beside the unified manifest too)
    urls = set(re.findall(r'https://[^"<\s]+', xml.decode())) | {
        u for u in re.findall(r'"(https://[^"]+)"', raw_json.decode())
    }
    urls = {u for u in urls if not u.startswith("https://developer.microsoft.com/")}
    assert any(u.endswith(f"/addin/commands.js?tenant={tenant}") for u in urls)
    for url in sorted(urls):
        status, _, _ = live.request("GET", _local(live, url.split("#")[0]).removeprefix(live.url))
        assert status == 200, url
    for icon in manifest["icons"].values():
        status, headers, body = live.request("GET", f"/addin/{icon}")
        assert status == 200 and body.startswith(b"\x89PNG"), icon


def test_manifest_is_per_tenant_and_unknown_tenants_get_404(live: Live) -> None:
    ids = set()
    for tenant in live.tenants.values():
        _, _, body = live.request("GET", f"/addin/manifest.json?tenant={tenant}")
        ids.add(json.loads(body)["id"])
        _, _, again = live.request("GET", f"/addin/manifest.json?tenant={tenant}")
        assert json.loads(again)["id"] == json.loads(body)["id"], "stable per tenant"
    assert len(ids) == 2
    for path in ("/addin/manifest.xml", "/addin/manifest.json?tenant=t_nobody"):
        status, headers, body = live.request("GET", path)
        assert status == 404 and b"Traceback" not in body, body


def test_pages_may_be_framed_by_outlook_only(live: Live) -> None:
    tenant = live.tenants["acme"]
    status, headers, body = live.request("GET", f"/addin/taskpane.html?tenant={tenant}")
    assert status == 200 and b"Open this page from Outlook" in body
    csp = headers["content-security-policy"]
    ancestors = csp.split("frame-ancestors", 1)[1].split(";")[0].split()
    assert "https://outlook.office.com" in ancestors and "*" not in ancestors
    assert "https://appsforoffice.microsoft.com" in csp.split("script-src", 1)[1].split(";")[0]
    assert "x-frame-options" not in {k.lower() for k in headers}
    assert b"https://appsforoffice.microsoft.com/lib/1/hosted/office.js" in body
    # everything else keeps its own framing rule
    _, headers, _ = live.request("GET", "/verify")
    assert headers["x-frame-options"] == "DENY"


def test_commands_run_with_the_office_mock_against_the_portal(live: Live) -> None:
    token = live.token_for(ALICE)
    other = live.token_for(OLIVER)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "SEALMAIL_PORTAL": live.url,
        "SEALMAIL_TENANT": live.tenants["acme"],
        "SEALMAIL_TOKEN": token,
        "SEALMAIL_OTHER_TOKEN": other,
    }
    got = subprocess.run(
        ["node", "--test", "--test-reporter=tap"],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = got.stdout + got.stderr
    assert got.returncode == 0, out
    assert "# fail 0" in out and "# skipped 0" in out, out
    assert "ok 5 - a draft with a card number gets encrypt" in out, out


def test_user_tokens_never_cross_tenants_nor_accept_api_keys(live: Live) -> None:
    token = live.token_for(ALICE)
    draft = {"to": ["bob@recipient.test"], "body": "card 4111 1111 1111 1111"}
    acme, other = live.tenants["acme"], live.tenants["other"]
    auth = {"Authorization": f"Bearer {token}"}
    status, _, body = live.request("POST", f"/addin/api/check?tenant={acme}", draft, auth)
    assert status == 200 and json.loads(body)["rule"] == "cards"
    status, _, body = live.request("POST", f"/addin/api/check?tenant={other}", draft, auth)
    assert status == 401 and "error" in json.loads(body)
    api = {"Authorization": f"Bearer {live.api_key}"}  # the tenant's admin key: never here
    status, _, _ = live.request("POST", f"/addin/api/check?tenant={acme}", draft, api)
    assert status == 401
    status, _, _ = live.request("POST", "/addin/api/check", draft, {"Authorization": "Bearer x"})
    assert status == 401
    # an address of no tenant's domain gets the same answer and no mail
    status, _, body = live.request("POST", "/addin/api/code", {"email": "eve@elsewhere.test"})
    assert status == 200 and "pending" in json.loads(body)
    status, _, body = live.request(
        "POST", "/addin/api/token", {"pending": json.loads(body)["pending"], "code": "000000"}
    )
    assert status == 400


@pytest.mark.browser
def test_task_pane_outside_outlook_and_the_admin_setting_in_a_browser(
    live: Live,
    browser: Any,  # noqa: F811
) -> None:
    """Runs last: it changes the tenant's on-send setting."""
    acme = live.tenants["acme"]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    # offline, Microsoft's CDN cannot answer: the page must still say what it is
    context.route("https://appsforoffice.microsoft.com/**", lambda route: route.abort())
    page = context.new_page()
    page.goto(f"{live.url}/addin/taskpane.html?tenant={acme}")
    assert page.locator("#outside").is_visible()
    assert "Open this page from Outlook" in page.locator("#outside").inner_text()
    assert not page.locator("#signin").is_visible() and not page.locator("#options").is_visible()
    look_at(page, "addin-taskpane-outside-outlook", group="addin")
    # the pane's markup inside Outlook (sign-in with the code form, then the options), shown
    # for a look at its layout and accessibility; what it does is tested with Microsoft's mock
    page.evaluate(
        "() => { for (const id of ['signin', 'code-form', 'options']) "
        "document.getElementById(id).hidden = false; "
        "document.getElementById('outside').hidden = true; "
        "document.getElementById('marked-state').textContent = "
        "'This message is not marked yet. Select Send Secure to send it securely.'; }"
    )
    look_at(page, "addin-taskpane-in-outlook", group="addin")
    page.goto(f"{live.url}/addin/help?tenant={acme}")
    look_at(page, "addin-help", group="addin")

    # the admin chooses "warn" on /admin/settings; the check then answers it
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live.url}/admin/login")
    page.fill("#email", ADMIN)
    seen = {id(m) for m in live.sink.messages}
    page.click("button[type=submit]")
    page.wait_for_selector("#code")
    mail = live.sink.wait_for(lambda m: ADMIN in m.rcpt_tos and id(m) not in seen, timeout=60)
    page.fill("#code", find_code(mail[-1].data))
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{live.url}/admin")
    page.goto(f"{live.url}/admin/settings")
    page.check("input[name=addin_on_send][value=warn]")
    page.click("button:has-text('Save the add-in setting')")
    page.wait_for_url(f"{live.url}/admin/settings?done=saved")
    assert "warns them, and they may send it as it is" in page.content()
    look_at(page, "admin-settings-addin", group="admin")
    token = live.token_for(ALICE)
    draft = {"to": ["bob@recipient.test"], "body": "card 4111 1111 1111 1111"}
    auth = {"Authorization": f"Bearer {token}"}
    _, _, body = live.request("POST", f"/addin/api/check?tenant={acme}", draft, auth)
    assert json.loads(body)["on_send"] == "warn"
