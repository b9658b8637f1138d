"""The letter for a caller with no contact record (SPEC §8): a PDF (fpdf2) addressed to
whoever manages the account, saying how the account owner grants the caller access — in the
portal or through their MSP, never by phone — with a reference number and the date.
:func:`build_letter` says what it holds (the account the caller named, if the desk may see
it); :func:`render_letter` writes the PDF.

Written with the PDF core font (Helvetica, Latin-1): text outside Latin-1 is folded to its
closest ASCII form so the letter never fails on a name; the text stays extractable.
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
import unicodedata

from fpdf import FPDF
from sqlalchemy.ext.asyncio import AsyncSession

from support.desk import OPERATOR, Scope, find_named

_MONTHS = (
    "January February March April May June July August September October November December"
).split()


@dataclasses.dataclass(frozen=True)
class LetterInfo:
    reference: str
    date: datetime.date
    caller_email: str
    caller_name: str = ""
    account_name: str = ""  # the account/tenant the caller named, if the desk found it
    partner_name: str = ""  # the MSP that manages that tenant, if any
    named: str = ""  # what the caller said (tenant or domain), when no account was found
    portal_url: str = ""
    service_name: str = "Secure mail"


def letter_reference() -> str:
    """``SL-`` and 10 characters from an alphabet without look-alikes, read over the phone."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    body = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"SL-{body[:5]}-{body[5:]}"


async def build_letter(
    s: AsyncSession,
    portal_url: str,
    caller_email: str,
    caller_name: str,
    named_text: str,
    scope: Scope = OPERATOR,
) -> LetterInfo:
    """What the letter says: the account the caller named, when the desk may see it."""
    named = await find_named(s, named_text, scope)
    return LetterInfo(
        reference=letter_reference(),
        date=datetime.datetime.now(datetime.UTC).date(),
        caller_email=caller_email,
        caller_name=caller_name,
        account_name=named.name if named else "",
        partner_name=named.partner.name if named and named.partner else "",
        named="" if named else named_text.strip(),
        portal_url=portal_url,
    )


def _latin1(text: str) -> str:
    out = []
    for ch in text:
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            folded = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(folded or "?")
    return "".join(out)


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


def format_date(d: datetime.date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def letter_paragraphs(info: LetterInfo) -> tuple[str, list[str], list[str]]:
    """The letter's greeting, paragraphs and numbered steps (also used for the HTML view)."""
    caller = _one_line(info.caller_name)
    email = _one_line(info.caller_email, 320)
    who = f"{caller} <{email}>" if caller else email
    account = _one_line(info.account_name)
    partner = _one_line(info.partner_name)
    if account:
        greeting = f"To whoever manages the account {account}"
        about = f"the account {account}"
    elif info.named:
        greeting = "To whoever manages the account"
        about = f'the account the caller named as "{_one_line(info.named)}"'
    else:
        greeting = "To whoever manages the account"
        about = "your account"
    portal = info.portal_url.rstrip("/") or "the portal"
    paragraphs = [
        f"On {format_date(info.date)}, {who} called our support desk about {about}. "
        "This address is not a contact of the account, so we could not discuss the account, "
        "its invoices or its services, nor make any change for them.",
        "For your protection we only act for the people the account owner has named as "
        "contacts, and each contact proves who they are on the phone with their own support "
        "PIN. We never add a contact, and never delete a service, because of a phone call - "
        "not even a call from someone who gives the right PIN.",
        "If this person should be able to call us for the account, the account owner (or "
        "someone the owner has already named as a contact) grants access:",
    ]
    steps = [
        f"Sign in to your billing account with us, where the account's contacts are kept, "
        f"and add {email} as a contact of the account, with the role it should have; our "
        "support desk sees the new contact as soon as it is saved.",
    ]
    if partner:
        steps.append(
            f"Or ask your managed service provider, {partner}, to add the contact for you "
            "through their own portal."
        )
    else:
        steps.append(
            "Or, if a managed service provider looks after your account, ask them to add "
            "the contact through their own portal."
        )
    steps.append(
        f"The new contact then sets their support PIN at {portal}/pin (we email them a "
        "one-time code to prove the address is theirs) and gives that PIN when they call."
    )
    steps.append(
        f"If you did not expect this call, you need do nothing. Please quote the reference "
        f"{info.reference} if you contact us about it."
    )
    return greeting, paragraphs, steps


def render_letter(info: LetterInfo) -> bytes:
    """The PDF, as bytes."""
    greeting, paragraphs, steps = letter_paragraphs(info)
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Support access letter {info.reference}"))
    pdf.set_author(_latin1(info.service_name))
    pdf.set_creator("sealmail")
    pdf.set_margins(22, 22, 22)
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"{info.service_name} - support desk"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, _latin1(f"Reference: {info.reference}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, _latin1(f"Date: {format_date(info.date)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 12)
    pdf.multi_cell(0, 7, _latin1(greeting), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 11)
    for text in paragraphs:
        pdf.multi_cell(0, 6, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    for n, text in enumerate(steps, 1):
        pdf.multi_cell(0, 6, _latin1(f"{n}. {text}"), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(6)
    pdf.set_font("Helvetica", "I", 10)
    pdf.multi_cell(
        0,
        5,
        _latin1(
            "We will never ask for a password, a PIN or a one-time code by email. "
            f"This letter was prepared by our support desk ({info.reference})."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())
