"""The sender's area (``/sent``): a tenant user's own messages, their status per recipient
and the evidence of "why was this encrypted?"."""
