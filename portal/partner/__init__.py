"""``/partner``: an MSP's console — its tenants, trials, plans, people, keys and default brand."""
