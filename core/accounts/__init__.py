"""Accounts: partners, tenants with their domains and networks, users, and how a sender proves
which tenant it belongs to."""
