"""Stage 3 of a message: drain the outbox to the next hop (relay, MX with MTA-STS), and
tell the sender with a DSN when a copy bounces or waits too long."""
