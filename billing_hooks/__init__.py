"""Layer 1: billing webhooks and the dunning schedule (SPEC §7).

It may import only ``core``.
"""
