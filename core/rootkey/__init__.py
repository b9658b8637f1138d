"""The root of the key hierarchy: a key in a file or in AWS KMS that wraps tenant KEKs, and
the derivation secret that purpose keys come from."""
