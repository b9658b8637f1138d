"""Choosing and reaching the next hop of each recipient.

A tenant's own ``relay`` (e.g. its Microsoft 365 endpoint) wins over the global ``relay``.
A smarthost hop gets a :class:`~gateway.delivery.relay.RelayPool` of its own (connections reused per
hop). ``mx`` delivers directly: MX look-up (RFC 5321 §5.1, with the implicit MX and the
null MX of RFC 7505), hosts tried in preference order on ``mx_port``, connections reused
per domain, STARTTLS opportunistic unless MTA-STS (RFC 8461, ``enforce``) or the item's
``require_tls`` asks for a verified certificate.

DNS failures are :class:`TransientError` (the recipient waits); only an authoritative
"this domain takes no mail" (NXDOMAIN, null MX) is a 5xx.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections import defaultdict
from collections.abc import Callable

import aiosmtplib

from core.config.settings import Settings
from core.config.values import parse_hostport
from core.errors import TransientError
from gateway.delivery.mtasts import MtaSts
from gateway.delivery.relay import (
    RelayPool,
    Reply,
    TlsUnavailable,
    open_client,
    quit_client,
    transaction,
)
from gateway.delivery.streamed import Payload

log = logging.getLogger("sealmail.gateway.nexthop")

MAX_IDLE_PER_DOMAIN = 4


def hop_for(tenant_relay: str, settings: Settings) -> str:
    """The next hop of a tenant's mail: its own, else the global one."""
    return (tenant_relay or "").strip() or settings.relay


def domain_of(address: str) -> str:
    # not core.addresses.domain_of: no strip(), a queued recipient is routed by its domain as is
    return address.rpartition("@")[2].rstrip(".").lower()


class NoRoute(Exception):
    """The domain says, authoritatively, that it takes no mail: a 5xx for its recipients."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


class Dns:
    """dnspython's async resolver: the system's, or ``dns_resolver`` (host:port)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._resolver = None

    def _get(self):  # noqa: ANN202 - dns.asyncresolver.Resolver, imported lazily
        if self._resolver is None:
            import dns.asyncresolver
            import dns.resolver

            if self.settings.dns_resolver:
                host, port = parse_hostport(self.settings.dns_resolver)
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [host]
                resolver.port = port
            else:
                resolver = dns.asyncresolver.Resolver()
            resolver.lifetime = min(30.0, max(2.0, self.settings.relay_timeout))
            resolver.timeout = min(5.0, resolver.lifetime)
            resolver.cache = dns.resolver.Cache()
            self._resolver = resolver
        return self._resolver

    async def query(self, name: str, rdtype: str) -> list | None:  # noqa: ANN401
        """The records, [] when the name has none of this type, None when the name does
        not exist (NXDOMAIN); TransientError when DNS gave no answer."""
        import dns.exception
        import dns.resolver

        try:
            answer = await self._get().resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoAnswer:
            return []
        except (dns.exception.DNSException, OSError) as exc:
            raise TransientError(f"DNS {rdtype} {name}: {type(exc).__name__}") from None
        return list(answer)

    async def txt(self, name: str) -> list[str]:
        records = await self.query(name, "TXT") or []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in records]

    async def addresses(self, host: str) -> list[str]:
        out: list[str] = []
        failure: TransientError | None = None
        for rdtype in ("A", "AAAA"):
            try:
                out += [r.address for r in await self.query(host, rdtype) or []]
            except TransientError as exc:
                failure = exc
        if not out and failure is not None:
            raise failure
        return out


async def mx_hosts(dns: Dns, domain: str) -> list[str]:
    """The domain's mail hosts, best first (equal preferences shuffled); the domain
    itself when it has no MX (implicit MX). :class:`NoRoute` for NXDOMAIN or null MX."""
    records = await dns.query(domain, "MX")
    if records is None:
        raise NoRoute(Reply(550, f"5.1.2 domain {domain} does not exist"))
    if not records:
        return [domain]
    hosts = [
        (r.preference, random.random(), r.exchange.to_text(omit_final_dot=True))  # noqa: S311
        for r in records
    ]
    hosts = [h for h in hosts if h[2] not in ("", ".")]
    if not hosts:
        raise NoRoute(Reply(556, f"5.1.10 domain {domain} accepts no mail (null MX)"))
    return [name.lower() for _, _, name in sorted(hosts)]


def _https_context(settings: Settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if settings.relay_tls_ca_file:
        ctx.load_verify_locations(cafile=settings.relay_tls_ca_file)
    return ctx


class MxDelivery:
    """Direct delivery to the recipient domain's MX hosts."""

    def __init__(self, settings: Settings, dns: Dns, sts: MtaSts) -> None:
        self.settings = settings
        self.dns = dns
        self.sts = sts
        self._idle: dict[tuple[str, str], list[aiosmtplib.SMTP]] = defaultdict(list)

    async def send(
        self, domain: str, mail_from: str, rcpts: list[str], data: Payload, require_tls: bool
    ) -> dict[str, Reply]:
        try:
            hosts = await mx_hosts(self.dns, domain)
        except NoRoute as exc:
            return dict.fromkeys(rcpts, exc.reply)
        policy = await self.sts.policy(domain)
        enforce = policy is not None and policy.mode == "enforce"
        if policy is not None and policy.mode != "none":
            unlisted = [h for h in hosts if not policy.matches(h)]
            if enforce:
                hosts = [h for h in hosts if policy.matches(h)]
                if not hosts:
                    why = f"MTA-STS: no MX host of {domain} matches its policy"
                    raise TlsUnavailable(why) if require_tls else TransientError(why)
            elif unlisted:  # testing: report only
                log.warning("MTA-STS (testing) %s: MX %s not in the policy", domain, unlisted)
        s = self.settings
        if require_tls or enforce or s.relay_tls == "required":
            tls = "verified"
        else:
            tls = "none" if s.relay_tls == "none" else "opportunistic"
        key = (domain, tls)
        idle = self._idle[key]
        while idle:
            client = idle.pop()
            if not client.is_connected:
                client.close()
                continue
            try:
                results = await transaction(client, mail_from, rcpts, data)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
                break  # a stale connection: try afresh
            self._keep(key, client)
            return results
        errors: list[str] = []
        tls_failed = False
        for host in hosts:
            try:
                addresses = await self.dns.addresses(host)
            except TransientError as exc:
                errors.append(str(exc))
                continue
            if not addresses:
                errors.append(f"{host}: no address")
            for address in addresses:
                try:
                    client = await open_client(s, address, s.mx_port, tls, server_name=host)
                except TlsUnavailable as exc:
                    tls_failed = True
                    errors.append(str(exc))
                    continue
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    errors.append(f"{host}[{address}]:{s.mx_port}: {exc}")
                    continue
                try:
                    results = await transaction(client, mail_from, rcpts, data)
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    client.close()
                    raise TransientError(f"{host}[{address}]: {exc}") from exc
                self._keep(key, client)
                return results
        why = f"{domain}: no MX host took the mail ({'; '.join(errors[-3:]) or 'no hosts'})"
        if tls_failed and require_tls:
            raise TlsUnavailable(why)
        raise TransientError(why)

    def _keep(self, key: tuple[str, str], client: aiosmtplib.SMTP) -> None:
        idle = self._idle[key]
        if len(idle) < MAX_IDLE_PER_DOMAIN:
            idle.append(client)
        else:
            client.close()

    async def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                await quit_client(idle.pop())


class NextHops:
    """Every next hop this worker talks to: a pool per smarthost, and direct MX delivery.

    ``default`` is an existing pool for the global relay; ``sts_url_for`` and
    ``sts_context`` move and trust the MTA-STS policy fetch (tests)."""

    def __init__(
        self,
        settings: Settings,
        size: int = 4,
        *,
        default: RelayPool | None = None,
        sts_url_for: Callable[[str], str] | None = None,
        sts_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.size = size
        self._pools: dict[str, RelayPool] = {}
        if default is not None:
            self._pools[default.hop] = default
        self.dns = Dns(settings)
        self.sts = MtaSts(
            self.dns.txt,
            timeout=min(30.0, settings.relay_timeout),
            url_for=sts_url_for,
            context=sts_context,
        )
        self._mx: MxDelivery | None = None

    def pool(self, hop: str) -> RelayPool:
        if hop not in self._pools:
            self._pools[hop] = RelayPool(self.settings, self.size, hop=hop)
        return self._pools[hop]

    def batches(self, hop: str, rcpts: list[str]) -> list[list[str]]:
        """Recipients that go out in one transaction: all of them to a smarthost, one
        batch per recipient domain in ``mx`` mode."""
        if hop != "mx":
            return [list(rcpts)]
        by_domain: dict[str, list[str]] = defaultdict(list)
        for rcpt in rcpts:
            by_domain[domain_of(rcpt)].append(rcpt)
        return list(by_domain.values())

    async def send(
        self, hop: str, mail_from: str, rcpts: list[str], data: Payload, require_tls: bool = False
    ) -> dict[str, Reply]:
        """One batch (see :meth:`batches`); a reply per recipient. TransientError when
        the hop cannot be reached; TlsUnavailable when ``require_tls`` cannot be met."""
        if hop != "mx":
            pool = self.pool(hop)
            if require_tls:
                return await pool.send_verified(mail_from, rcpts, data)
            return await pool.send(mail_from, rcpts, data)
        if self._mx is None:
            if self.sts.context is None:
                self.sts.context = _https_context(self.settings)
            self._mx = MxDelivery(self.settings, self.dns, self.sts)
        results: dict[str, Reply] = {}
        for batch in self.batches(hop, rcpts):
            results.update(
                await self._mx.send(domain_of(batch[0]), mail_from, batch, data, require_tls)
            )
        return results

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self._pools.values()))
        if self._mx is not None:
            await self._mx.close()
