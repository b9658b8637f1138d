"""SMTP replies the gateway gives, as named constants (RFC 5321 + enhanced status codes).

Our own failures are always 4xx; 5xx is only ever about the message or the sender.
"""

from __future__ import annotations

REPLY_QUEUED = "250 2.0.0 queued as {id}"
REPLY_OK = "250 2.0.0 OK"
REPLY_SENDER_OK = "250 2.1.0 sender OK"
REPLY_RCPT_OK = "250 2.1.5 recipient OK"
REPLY_AUTH_OK = "235 2.7.0 authentication successful"

REPLY_TEMPFAIL = "451 4.3.0 temporary failure, please try again later"
REPLY_SUSPENDED = "451 4.7.1 service suspended for this account"
REPLY_TERMINATED = "550 5.7.1 service terminated for this account"
REPLY_RELAY_DENIED = "550 5.7.1 relay access denied"
REPLY_TOO_BIG = "552 5.3.4 message size exceeds fixed maximum message size"
REPLY_TOO_MANY_RCPTS = "452 4.5.3 too many recipients"
REPLY_LINE_TOO_LONG = "500 5.5.2 line too long (over 65536 octets, RFC 5321 4.5.3.1.6)"
REPLY_BARE_NEWLINE = "550 5.5.2 bare CR or LF next to a lone dot is not allowed"
REPLY_SYNTAX_MAIL = "501 5.5.4 syntax: MAIL FROM:<address> [parameters]"
REPLY_BAD_SIZE_PARAM = "501 5.5.4 SIZE takes a number of octets"
# a source route, the %-hack or a bang path: a valid path, but one that asks us to relay on
# (RFC 5321 553 "mailbox name not allowed"; RFC 3463 X.1.7 for a sender, X.1.3 a recipient)
REPLY_SENDER_ROUTED = "553 5.1.7 sender address not accepted: {why}"
REPLY_RCPT_ROUTED = "553 5.1.3 recipient address not accepted: {why}"
SOURCE_ROUTE_REFUSED = "source routes (<@host:user@domain>) are not accepted"

REPLY_AUTH_FAILED = "535 5.7.8 authentication credentials invalid"
REPLY_AUTH_TEMPFAIL = "454 4.7.0 temporary authentication failure"
REPLY_AUTH_TOO_MANY = "421 4.7.0 too many failed authentication attempts, closing"
REPLY_AUTH_NEEDS_TLS = "538 5.7.11 encryption required for requested authentication mechanism"

REPLY_TOO_MANY_SESSIONS = "421 4.3.2 too many connections, try again later"
REPLY_SHUTTING_DOWN = "421 4.3.2 service shutting down, try again later"
REPLY_TOO_MANY_COMMANDS = "421 4.7.0 too many commands, closing"
