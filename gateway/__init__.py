"""Layer 2: the SMTP gateway — intake (accept, seal, queue), the pipeline (triggers,
seal to portal, notify) and delivery (outbox to the relay, DSNs, loop stamps)."""
