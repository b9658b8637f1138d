"""The portal served by uvicorn on a loopback port in a thread, for the browser tests, and
what those tests do beside the browser (run a coroutine while sync Playwright holds this
thread's event loop, read the newest one-time code from the outbox)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from core.db import migrate
from core.services import Services
from portal.app import create_app
from tests.conftest import make_settings
from tests.helpers.smtp_sink import free_port

T = TypeVar("T")


@contextmanager
def serve_portal(
    tmp_path: Path, host: str = "127.0.0.1", **overrides: Any
) -> Iterator[tuple[str, Any]]:
    """``(base URL, settings)`` of a portal on SQLite, running until the block ends. ``host``
    names it in the base URL (``localhost`` for WebAuthn, which refuses IP addresses as RP
    ID); it listens on 127.0.0.1 either way."""
    import uvicorn

    db_url = f"sqlite:///{tmp_path}/browser.db"
    migrate(db_url)
    port = free_port()
    base = f"http://{host}:{port}"
    settings = make_settings(tmp_path, db_url, portal_base_url=base, **overrides)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield base, settings
    finally:
        server.should_exit = True
        thread.join(10)


def in_thread(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``coro_fn()`` to its end on a thread of its own (sync Playwright keeps an event
    loop on this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro_fn()).result(timeout=120)  # type: ignore[arg-type]


def latest_code(settings: Any) -> str:
    """The newest one-time code in the outbox."""
    from tests.portal.conftest import code_mails

    async def run() -> str:
        services = Services.open(settings)
        try:
            _item, mail = (await code_mails(services))[-1]
        finally:
            await services.close()
        m = re.search(r"\b(\d{6})\b", mail.get_body(("plain",)).get_content())
        assert m
        return m.group(1)

    return in_thread(run)


# --- steps several browser tests take ----------------------------------------------------------


def admin_sign_in(browser: Any, base: str, settings: Any, email: str) -> Any:  # noqa: ANN401
    """A new 1280 px page of ``browser`` signed in at /admin with the emailed code."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Send me a code").click()
    page.get_by_label("One-time code").fill(latest_code(settings))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin")
    return page


def virtual_authenticator(context: Any, page: Any) -> tuple[Any, str]:  # noqa: ANN401
    """A CDP virtual platform authenticator (resident keys, user verified) for ``page``:
    the CDP session and the authenticator's id."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]
