"""Layer 1: where sealed objects live (local filesystem now, S3 later) and the vault that
seals and opens them."""
