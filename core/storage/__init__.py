"""Where sealed objects live: the storage interface, the local and S3 stores, the factory
that opens the configured one, and the vault that seals objects into it."""
