"""The DNS records a tenant publishes so its notices pass DKIM and DMARC, and what DNS shows.

Per domain of the tenant:

- **DKIM**: ``<selector>._domainkey.<domain>`` TXT ``v=DKIM1; k=rsa; p=<public key>`` for the
  active key and for a pending one (published before the switch).
- **SPF**: notices leave with the original sender's address as envelope sender, so the
  domain's SPF record must allow the host that hands them to the recipient's server. With
  direct delivery (``relay = "mx"``) that is this server: ``a:<smtp_hostname>`` (there is no
  operator SPF domain in the settings to ``include:``); through a smarthost (a tenant's
  Microsoft 365 endpoint, a provider) it is that service's own mechanism, which sealmail
  cannot know, so it asks only that one SPF record exists and says so.
- **DMARC**: ``_dmarc.<domain>`` ``v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@<domain>``
  as a suggestion; any DMARC record counts as found, ``p=none`` is called out.

A check says, per record, ``ok`` (found and matching), ``different`` (found, and what
differs), ``missing``, or ``unknown`` (DNS did not answer), with a sentence for people.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from core.dkim.keys import ACTIVE, PENDING
from core.dkim.models import DkimKey
from core.errors import TransientError

OK, DIFFERENT, MISSING, UNKNOWN = "ok", "different", "missing", "unknown"
TxtLookup = Callable[[str], Awaitable[list[str] | None]]


@dataclasses.dataclass(frozen=True)
class Record:
    kind: str  # dkim | spf | dmarc
    domain: str
    name: str
    value: str  # what to publish (for SPF, the mechanism to have in the record)
    why: str  # one sentence: why publish it
    selector: str = ""
    key_state: str = ""  # dkim: pending | active


@dataclasses.dataclass(frozen=True)
class Check:
    record: Record
    state: str
    found: tuple[str, ...]
    says: str  # one sentence about what DNS shows

    def as_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self.record),
            "state": self.state,
            "found": list(self.found),
            "says": self.says,
        }


def dkim_value(public_key: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key}"


def spf_mechanism(hop: str, smtp_hostname: str) -> str:
    """What the SPF record must name: this server with direct delivery, else '' (the
    smarthost's own mechanism, unknown here)."""
    return f"a:{smtp_hostname}" if hop == "mx" else ""


def expected(
    domains: Sequence[str], keys: Sequence[DkimKey], hop: str, smtp_hostname: str
) -> list[Record]:
    """Every record the tenant should publish, domain by domain."""
    out: list[Record] = []
    mechanism = spf_mechanism(hop, smtp_hostname)
    for d in domains:
        for key in keys:
            if key.domain != d or key.state not in (ACTIVE, PENDING):
                continue
            why = (
                "This is the key that signs your notices now."
                if key.state == ACTIVE
                else "This is the new key: publish it, then switch to it."
            )
            out.append(
                Record(
                    "dkim",
                    d,
                    f"{key.selector}._domainkey.{d}",
                    dkim_value(key.public_key),
                    why,
                    key.selector,
                    key.state,
                )
            )
        if mechanism:
            spf_value = f"v=spf1 {mechanism} ~all"
            spf_why = f"It lets this server ({smtp_hostname}) send mail for {d}."
        else:
            spf_value = "v=spf1 include:<your mail relay's SPF domain> ~all"
            spf_why = (
                f"Your notices leave through {hop}: your SPF record must allow that relay "
                "(for Microsoft 365, include:spf.protection.outlook.com)."
            )
        out.append(Record("spf", d, d, spf_value, spf_why))
        out.append(
            Record(
                "dmarc",
                d,
                f"_dmarc.{d}",
                f"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{d}",
                "It tells receivers to distrust mail in your name that fails DKIM and SPF.",
            )
        )
    return out


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def judge(record: Record, found: list[str] | None) -> Check:
    """Compare what DNS shows (``None``: the name does not exist) with the record."""
    texts = tuple(found or ())
    if record.kind == "dkim":
        keys = [t for t in texts if "p=" in t]
        if not keys:
            return Check(record, MISSING, texts, f"There is no DKIM record at {record.name}.")
        want = _tags(record.value)
        for t in keys:
            tags = _tags(t)
            if tags.get("p") == want["p"] and tags.get("k", "rsa").lower() == "rsa":
                return Check(record, OK, texts, "Found, with the right key.")
        tags = _tags(keys[0])
        if not tags.get("p"):
            says = "Found, but its p= is empty: the key was revoked there."
        elif tags.get("k", "rsa").lower() != "rsa":
            says = f"Found, but it says k={tags['k']} where it should say k=rsa."
        else:
            says = "Found, but it holds a different key: replace its value with the one shown."
        return Check(record, DIFFERENT, texts, says)
    if record.kind == "spf":
        spf = [t for t in texts if t.lower().startswith("v=spf1")]
        if not spf:
            return Check(record, MISSING, texts, f"{record.domain} has no SPF record.")
        if len(spf) > 1:
            return Check(
                record, DIFFERENT, texts, "There are two SPF records; SPF fails until they are one."
            )
        mechanism = record.value.split()[1] if "<" not in record.value else ""
        words = [w.lower().lstrip("+") for w in spf[0].split()]
        if mechanism and mechanism.lower() not in words:
            return Check(
                record,
                DIFFERENT,
                texts,
                f"Found, but it does not name {mechanism}: add it before the final all.",
            )
        return Check(
            record, OK, texts, "Found." if mechanism else "Found (check it allows your relay)."
        )
    dmarc = [t for t in texts if t.lower().replace(" ", "").startswith("v=dmarc1")]
    if not dmarc:
        return Check(record, MISSING, texts, f"There is no DMARC record at {record.name}.")
    policy = _tags(dmarc[0]).get("p", "").lower()
    if policy in ("quarantine", "reject"):
        return Check(record, OK, texts, f"Found, with p={policy}.")
    return Check(
        record,
        DIFFERENT,
        texts,
        f"Found, with p={policy or '(none given)'}: receivers only report, they do not hold "
        "back forged mail in your name.",
    )


async def check(records: Sequence[Record], lookup: TxtLookup) -> list[Check]:
    """Ask DNS about every record at once (one look-up per name)."""
    names = sorted({r.name for r in records})

    async def one(name: str) -> list[str] | None | TransientError:
        try:
            return await lookup(name)
        except TransientError as exc:
            return exc

    answers = dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))
    out: list[Check] = []
    for r in records:
        answer = answers[r.name]
        if isinstance(answer, TransientError):
            out.append(Check(r, UNKNOWN, (), f"DNS did not answer about {r.name}; try again."))
        else:
            out.append(judge(r, answer))
    return out


def published(checks: Sequence[Check]) -> dict[str, bool]:
    """Per DKIM record name: does DNS show it with the right key (for :func:`keys.activate`)."""
    return {c.record.name: c.state == OK for c in checks if c.record.kind == "dkim"}
