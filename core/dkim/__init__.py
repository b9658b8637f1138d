"""DKIM for the mail sealmail writes for a tenant: the tenant's signing keys (``models.py``)."""
