"""The tenant admin's area (``/admin``): signing in, the overview, the quarantine, "why was
this encrypted?", recipient keys, the archive, retention and legal holds, and the billing
standing."""
