"""Intake through real sockets: stdlib smtplib against a gateway on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket

import pytest
from sqlalchemy import select

from core.models import Message, MessageRecipient
from gateway.intake.handler import build_gateway
from tests.conftest import make_settings
from tests.gateway.conftest import asend, client_tls, make_message, make_tenant


def _queue_id(reply: bytes | str) -> str:
    text = reply.decode() if isinstance(reply, bytes) else reply
    assert text.startswith("2.0.0 queued as "), text
    return text.rsplit(" ", 1)[1]


def session_run(address, steps, starttls=True, login=None):  # noqa: ANN001, ANN201
    """Run raw commands (after EHLO/STARTTLS/AUTH) and return their replies."""
    out = []
    with smtplib.SMTP(*address, timeout=10) as c:
        c.ehlo("client.test")
        if starttls:
            c.starttls(context=client_tls())
            c.ehlo("client.test")
        if login:
            c.login(*login)
        for cmd, arg in steps:
            if cmd == "DATA":
                code, text = c.docmd("DATA")
                out.append((code, text))
                if code == 354:
                    c.send(arg)
                    out.append(c.getreply())
            else:
                out.append(c.docmd(cmd, arg))
    return out


async def test_authenticated_message_is_queued_and_stored(gateway, tenant, gw_services):
    msg = make_message()

    def extensions() -> set[str]:
        with smtplib.SMTP(*gateway, timeout=10) as c:
            c.ehlo("client.test")
            c.starttls(context=client_tls())
            c.ehlo("client.test")
            return set(c.esmtp_features)

    assert {"size", "8bitmime", "pipelining", "smtputf8", "auth"} <= await asyncio.to_thread(
        extensions
    )
    replies = await asyncio.to_thread(
        session_run,
        gateway,
        [
            ("MAIL", "FROM:<alice@acme.example>"),
            ("RCPT", "TO:<bob@partner.example>"),
            ("RCPT", "TO:<carol@other.example>"),
            ("DATA", msg + b".\r\n"),
        ],
        login=(tenant.username, tenant.password),
    )
    assert [r[0] for r in replies] == [250, 250, 250, 354, 250]
    qid = _queue_id(replies[-1][1])
    async with gw_services.db.session() as s:
        m = await s.get(Message, qid)
        assert m is not None and m.state == "received" and m.tenant_id == tenant.id
        assert m.mail_from == "alice@acme.example" and m.client_addr == "127.0.0.1"
        rcpts = (
            (
                await s.execute(
                    select(MessageRecipient.rcpt).where(MessageRecipient.message_id == qid)
                )
            )
            .scalars()
            .all()
        )
        assert sorted(rcpts) == ["bob@partner.example", "carol@other.example"]
        raw = await gw_services.vault.read(s, tenant.id, m.raw_object_id)
    assert raw.startswith(b"Received: from client.test ([127.0.0.1])")
    assert raw.endswith(msg)


async def test_auth_before_starttls_is_refused(gateway, tenant):
    blob = base64.b64encode(f"\0{tenant.username}\0{tenant.password}".encode()).decode()
    replies = await asyncio.to_thread(
        session_run, gateway, [("AUTH", f"PLAIN {blob}")], starttls=False
    )
    assert replies[0][0] == 538


async def test_wrong_password_is_535(gateway, tenant):
    with pytest.raises(smtplib.SMTPAuthenticationError) as err:
        await asend(
            gateway,
            make_message(),
            "alice@acme.example",
            ["b@x.example"],
            login=(tenant.username, "wrong"),
        )
    assert err.value.smtp_code == 535


async def test_unknown_client_is_denied_relay(gateway, tenant):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        await asend(gateway, make_message(), "alice@acme.example", ["bob@partner.example"])
    code, text = err.value.recipients["bob@partner.example"]
    assert code == 550 and text == b"5.7.1 relay access denied"


async def test_sender_domain_must_belong_to_tenant(gateway, tenant):
    with pytest.raises(smtplib.SMTPSenderRefused) as err:
        await asend(
            gateway,
            make_message(sender="mallory@evil.example"),
            "mallory@evil.example",
            ["bob@partner.example"],
            login=(tenant.username, tenant.password),
        )
    assert err.value.smtp_code == 550 and err.value.smtp_error == b"5.7.1 relay access denied"


@pytest.mark.parametrize(
    ("standing", "code", "text"),
    [
        ("suspended", 451, b"4.7.1 service suspended for this account"),
        ("terminated", 550, b"5.7.1 service terminated for this account"),
    ],
)
async def test_tenant_standing(gateway, gw_services, standing, code, text):
    t = await make_tenant(gw_services, "Held", ("held.example",), standing=standing)
    with pytest.raises(smtplib.SMTPSenderRefused) as err:
        await asend(
            gateway,
            make_message(sender="a@held.example"),
            "a@held.example",
            ["bob@partner.example"],
            login=(t.username, t.password),
        )
    assert (err.value.smtp_code, err.value.smtp_error) == (code, text)


async def test_too_big_is_552(gw_services, tmp_path, tenant):
    from dataclasses import replace

    gw = build_gateway(
        type(gw_services)(
            **{
                **gw_services.__dict__,
                "settings": replace(gw_services.settings, smtp_max_message_size=2000),
            }
        )
    )
    address = await gw.start()
    try:
        big = make_message(body="x" * 70 + "\r\n" * 1 + ("y" * 70 + "\r\n") * 40)
        # announced with SIZE= at MAIL
        with pytest.raises(smtplib.SMTPSenderRefused) as err:
            await asend(
                address,
                big,
                "alice@acme.example",
                ["b@partner.example"],
                login=(tenant.username, tenant.password),
            )
        assert err.value.smtp_code == 552 and err.value.smtp_error.startswith(b"5.3.4")
        # not announced: refused after DATA, and the session goes on
        replies = await asyncio.to_thread(
            session_run,
            address,
            [
                ("MAIL", "FROM:<alice@acme.example>"),
                ("RCPT", "TO:<b@partner.example>"),
                ("DATA", big + b".\r\n"),
                ("NOOP", ""),
            ],
            login=(tenant.username, tenant.password),
        )
        assert replies[3][0] == 552 and replies[3][1].startswith(b"5.3.4")
        assert replies[4][0] == 250
    finally:
        await gw.stop(1)


async def test_connector_token_with_allowed_network(gateway, gw_services):
    t = await make_tenant(
        gw_services, "M365", ("m365.example",), networks=(("127.0.0.0/8", False),)
    )
    good = make_message(sender="a@m365.example", extra=f"X-Sealmail-Tenant-Token: {t.token}\r\n")
    result = await asend(gateway, good, "a@m365.example", ["bob@partner.example"])
    assert result == {}
    # same network, no token / wrong token: judged at DATA
    for extra in ("", "X-Sealmail-Tenant-Token: not-the-token\r\n"):
        with pytest.raises(smtplib.SMTPDataError) as err:
            await asend(
                gateway,
                make_message(sender="a@m365.example", extra=extra),
                "a@m365.example",
                ["bob@partner.example"],
            )
        assert (err.value.smtp_code, err.value.smtp_error) == (550, b"5.7.1 relay access denied")
    # right token, wrong envelope sender domain
    with pytest.raises(smtplib.SMTPDataError) as err:
        await asend(gateway, good, "a@elsewhere.example", ["bob@partner.example"])
    assert err.value.smtp_code == 550


async def test_connector_token_from_outside_its_networks(gateway, gw_services):
    t = await make_tenant(
        gw_services, "M365", ("m365.example",), networks=(("10.9.0.0/16", False),)
    )
    await make_tenant(gw_services, "Other", ("other.example",), networks=(("127.0.0.0/8", False),))
    good = make_message(sender="a@m365.example", extra=f"X-Sealmail-Tenant-Token: {t.token}\r\n")
    with pytest.raises(smtplib.SMTPDataError) as err:
        await asend(gateway, good, "a@m365.example", ["bob@partner.example"])
    assert err.value.smtp_code == 550


async def test_private_network_identifies_tenant(gateway, gw_services):
    await make_tenant(gw_services, "Lan", ("lan.example",), networks=(("127.0.0.0/8", True),))
    result = await asend(
        gateway,
        make_message(sender="a@lan.example"),
        "a@lan.example",
        ["bob@partner.example"],
        starttls=False,
    )
    assert result == {}
    with pytest.raises(smtplib.SMTPSenderRefused):
        await asend(
            gateway,
            make_message(sender="a@acme.example"),
            "a@acme.example",
            ["bob@partner.example"],
            starttls=False,
        )


async def test_malformed_input_gets_5xx_syntax_replies(gateway, tenant):
    long_line = b"Subject: x\r\n\r\n" + b"a" * 70_000 + b"\r\n.\r\n"
    smuggle = b"Subject: x\r\n\r\nhello\n.\r\nMAIL FROM:<a@acme.example>\r\n.\r\n"
    replies = await asyncio.to_thread(
        session_run,
        gateway,
        [
            ("MAIL", "FROM:alice@@acme"),
            ("MAIL", "FROM:<alice@acme.example> SIZE=abc"),
            ("RCPT", "TO:<b@partner.example>"),
            ("MAIL", "FROM:<alice@acme.example>"),
            ("RCPT", "TO:<b@partner.example>"),
            ("DATA", long_line),
            ("MAIL", "FROM:<alice@acme.example>"),
            ("RCPT", "TO:<b@partner.example>"),
            ("DATA", smuggle),
            ("NOOP", ""),
        ],
        login=(tenant.username, tenant.password),
    )
    codes = [r[0] for r in replies]
    assert codes[0] in (501, 553) and codes[1] == 501 and codes[2] == 503
    assert codes[5:7] == [354, 500]
    assert codes[9:11] == [354, 550] and replies[10][1].startswith(b"5.5.2")
    assert codes[11] == 250


async def test_pipelined_commands_after_data_are_not_lost(gateway, gw_services):
    await make_tenant(gw_services, "Lan", ("lan.example",), networks=(("127.0.0.0/8", True),))

    def run() -> bytes:
        with socket.create_connection(gateway, timeout=10) as sock:
            f = sock.makefile("rb")
            f.readline()
            sock.sendall(b"EHLO c.test\r\n")
            while f.readline()[3:4] == b"-":
                pass
            sock.sendall(b"MAIL FROM:<a@lan.example>\r\nRCPT TO:<b@p.example>\r\nDATA\r\n")
            body = b"Subject: p\r\n\r\n" + b"..dot\r\n" * 5000
            sock.sendall(
                body
                + b".\r\nMAIL FROM:<a@lan.example>\r\nRCPT TO:<c@p.example>\r\nDATA\r\n"
                + b"Subject: q\r\n\r\nsecond\r\n.\r\nQUIT\r\n"
            )
            return b"".join(iter(f.readline, b""))

    out = await asyncio.to_thread(run)
    lines = out.split(b"\r\n")
    assert [ln[:3] for ln in lines if ln] == [
        b"250",
        b"250",
        b"354",
        b"250",
        b"250",
        b"250",
        b"354",
        b"250",
        b"221",
    ]


async def test_session_limits(gw_services, tenant):
    from dataclasses import replace

    settings = replace(gw_services.settings, smtp_max_sessions=1, smtp_max_commands=5)
    gw = build_gateway(type(gw_services)(**{**gw_services.__dict__, "settings": settings}))
    address = await gw.start()
    try:
        first = await asyncio.to_thread(smtplib.SMTP, *address, timeout=10)
        with pytest.raises(smtplib.SMTPConnectError) as err:
            await asyncio.to_thread(smtplib.SMTP, *address, timeout=10)
        assert err.value.smtp_code == 421
        codes = [(await asyncio.to_thread(first.docmd, "NOOP"))[0] for _ in range(6)]
        assert codes[:5] == [250] * 5 and codes[5] == 421
        first.close()
    finally:
        await gw.stop(1)


async def test_drain_finishes_open_transaction_and_refuses_new(gw_services, tenant):
    gw = build_gateway(gw_services)
    address = await gw.start()
    c = await asyncio.to_thread(smtplib.SMTP, *address, timeout=10)
    await asyncio.to_thread(c.ehlo, "client.test")
    await asyncio.to_thread(c.starttls, context=client_tls())
    await asyncio.to_thread(c.ehlo, "client.test")
    await asyncio.to_thread(c.login, tenant.username, tenant.password)
    assert (await asyncio.to_thread(c.mail, "alice@acme.example"))[0] == 250
    stopping = asyncio.create_task(gw.stop(drain_timeout=10))
    await asyncio.sleep(0.2)
    with pytest.raises(smtplib.SMTPConnectError) as err:
        await asyncio.to_thread(smtplib.SMTP, *address, timeout=10)
    assert err.value.smtp_code == 421
    assert (await asyncio.to_thread(c.rcpt, "bob@partner.example"))[0] == 250
    code, text = await asyncio.to_thread(c.data, make_message())
    assert code == 250 and text.startswith(b"2.0.0 queued as ")
    assert (await asyncio.to_thread(c.docmd, "NOOP"))[0] == 421
    c.close()
    await asyncio.wait_for(stopping, 5)


# --- our own failure is 451, never 5xx ---------------------------------------------------


async def test_unusable_sqlite_during_data_is_451(tmp_path, sink):
    from core.db import migrate
    from core.services import Services
    from tests.gateway.conftest import write_self_signed

    url = f"sqlite:///{tmp_path}/broken.db"
    await asyncio.to_thread(migrate, url)
    cert, key = write_self_signed(tmp_path / "tls")
    settings = make_settings(
        tmp_path, url, smtp_listen="127.0.0.1:0", smtp_tls_cert=cert, smtp_tls_key=key
    )
    svc = Services.open(settings)
    try:
        t = await make_tenant(svc)
        gw = build_gateway(svc)
        address = await gw.start()

        def run() -> list:
            with smtplib.SMTP(*address, timeout=10) as c:
                c.ehlo("c.test")
                c.starttls(context=client_tls())
                c.ehlo("c.test")
                c.login(t.username, t.password)
                c.mail("alice@acme.example")
                c.rcpt("bob@partner.example")
                for name in ("broken.db", "broken.db-wal", "broken.db-shm"):
                    p = tmp_path / name
                    if p.exists():
                        p.write_bytes(b"\xff" * 8192)
                return list(c.data(make_message()))

        code, text = await asyncio.to_thread(run)
        assert code == 451 and text.startswith(b"4.3.0"), (code, text)
        await gw.stop(1)
    finally:
        await svc.close()


async def test_data_commit_stuck_before_it_begins_is_451_and_stores_nothing(gw_services, caplog):
    """A commit that cannot begin within smtp_step_timeout (here: the write gate is held)
    answers 451 4.3.0 instead of silence, and leaves no row and no object behind."""
    from dataclasses import replace

    if not gw_services.db.is_sqlite:
        pytest.skip("PostgreSQL has no write gate: a commit begins at once")
    await make_tenant(gw_services, "Lan", ("lan.example",), networks=(("127.0.0.0/8", True),))
    settings = replace(gw_services.settings, smtp_step_timeout=1.0)
    gw = build_gateway(type(gw_services)(**{**gw_services.__dict__, "settings": settings}))
    address = await gw.start()
    written: list[str] = []
    real_put = gw_services.store.put

    def put(name, data, retain_until=None):  # noqa: ANN001, ANN202 - records what was stored
        written.append(name)
        return real_put(name, data, retain_until)

    gw_services.store.put = put
    try:
        async with gw_services.db.write_gate.hold():
            with pytest.raises(smtplib.SMTPDataError) as err:
                await asyncio.wait_for(
                    asend(
                        address,
                        make_message(sender="a@lan.example"),
                        "a@lan.example",
                        ["b@partner.example"],
                        starttls=False,
                    ),
                    10,
                )
        assert (err.value.smtp_code, err.value.smtp_error[:5]) == (451, b"4.3.0")
        assert "waited" in caplog.text and "database commit" in caplog.text
        assert written and not any(gw_services.store.exists(n) for n in written)
        async with gw_services.db.session() as s:
            assert (await s.execute(select(Message))).scalars().all() == []
        # the gate free again, the same message is taken
        await asend(
            address,
            make_message(sender="a@lan.example"),
            "a@lan.example",
            ["b@partner.example"],
            starttls=False,
        )
        async with gw_services.db.session() as s:
            assert len((await s.execute(select(Message))).scalars().all()) == 1
    finally:
        gw_services.store.put = real_put
        await gw.stop(1)
