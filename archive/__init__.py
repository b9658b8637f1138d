"""Layer 1: the long-term archive: index, search, export, retention, legal holds, the
retention sweep and verification."""
