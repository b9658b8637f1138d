"""Layer 1: billing webhooks, the dunning schedule and support PINs (SPEC §7-8).

Reserved for a later issue; it may import only ``core``.
"""
