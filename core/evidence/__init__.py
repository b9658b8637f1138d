"""The evidence log (issue 16): per tenant, an append-only, hash-chained log of what happened
to each message, checkpoints signed with the tenant's Ed25519 key, and receipts a third
party verifies offline with only the public key."""
