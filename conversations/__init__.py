"""Secure conversations (issue 12): what the portal, the CLI and the gateway share about a
sealed message after it was sent — its per-message options (``options``), its events per
recipient (``events``, ``models``), the sender's controls (``control``: revoke, expiry), the
threading of replies (``threads``), and messages written in the portal (``compose``: the MIME,
``submit``: stored as received, so the pipeline treats them like SMTP mail).

Layer 1: imports only ``core``.
"""
