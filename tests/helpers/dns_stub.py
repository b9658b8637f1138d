"""A tiny DNS server on loopback UDP, in a thread of its own, answering TXT (and anything
else) from a dict: what the tests point ``dns_resolver`` at, and what dkimpy's verifier is
given as ``dnsfunc``. Long TXT values are split into 255-octet strings, as a zone would."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset


def _txt(value: str) -> dns.rdtypes.ANY.TXT.TXT:
    data = value.encode()
    pieces = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, pieces)


class DnsStub:
    """``txt[name] = [values]``; a name not in it is NXDOMAIN. ``queries`` lists what was
    asked."""

    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        """The ``dns_resolver`` setting that points at this server."""
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, *values: str) -> None:
        self.txt.setdefault(name.lower().rstrip("."), []).extend(values)

    def lookup(self, name: str) -> list[str] | None:
        return self.txt.get(name.lower().rstrip("."))

    def dnsfunc(self, name: bytes | str, timeout: int = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the TXT of ``name`` (the key record) or None."""
        text = name.decode() if isinstance(name, bytes) else name
        found = self.lookup(text)
        return found[0].encode() if found else None

    def _answer(self, data: bytes) -> bytes:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        self.queries.append(name)
        values = self.lookup(name)
        if values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.TXT)
            for v in values:
                rrset.add(_txt(v), 60)
            response.answer.append(rrset)
        return response.to_wire()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self._answer(data), peer)
            except Exception:  # noqa: BLE001, S112 - a malformed query gets no answer
                continue

    def start(self) -> DnsStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextmanager
def dns_stub() -> Iterator[DnsStub]:
    stub = DnsStub().start()
    try:
        yield stub
    finally:
        stub.stop()
