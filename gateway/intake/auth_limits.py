"""SMTP AUTH tries limited across sessions and processes, per client address and per
username (:mod:`core.attempts`), like Postfix's anvil or Dovecot's auth penalty but shared
by every ``sealmail serve`` on one database.

A try is counted before the password is checked; only when both the address's and the
username's counters took it is the password checked. A right password gives its try back
(a success never frees another address's tries). Over a limit the client gets
``454 4.7.0`` and the password is not checked at all, so a right one is refused too until
the window has passed. Unknown usernames are counted the same way, so the replies never
tell whether a username exists.
"""

from __future__ import annotations

from core import attempts
from core.db import Database
from core.hashing import sha256_hex

WINDOW = 15 * 60.0  # seconds a window of tries lasts
MAX_PER_ADDRESS = 10  # tries per client address in the window
MAX_PER_USERNAME = 10  # tries per username in the window


def keys(client_ip: str, username: str) -> list[tuple[str, int]]:
    """The counters one AUTH try counts against, with their limits."""
    return [
        (f"smtp-auth-ip:{client_ip}", MAX_PER_ADDRESS),
        (f"smtp-auth-user:{sha256_hex(username.strip().lower())}", MAX_PER_USERNAME),
    ]


async def claim(db: Database, counters: list[tuple[str, int]]) -> bool:
    """Count the try; False when over a limit (do not check the password). The client
    waits for the answer, so the write is urgent: on SQLite, AUTH behind steady intake
    would otherwise wait as long as messages keep arriving."""
    return await attempts.claim(db, counters, WINDOW, urgent=True)


async def give_back(db: Database, counters: list[tuple[str, int]]) -> None:
    await attempts.give_back(db, [key for key, _ in counters], urgent=True)
