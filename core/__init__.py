"""Layer 0: configuration, database, accounts, keys, sealed objects, outbox, errors."""
