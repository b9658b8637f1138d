"""Layer 2: the SMTP gateway, by stage of a message: ``intake/`` (accept, seal, queue),
``pipeline/`` (decide per recipient, run the handlers: seal to portal, notify, encrypt)
and ``delivery/`` (outbox to the next hop, DSNs); ``worker`` runs pipeline and delivery,
``scheduler`` the periodic jobs. ``headers`` and ``stamp`` (the loop stamp, checked at
intake and put on at delivery) serve all three stages."""
