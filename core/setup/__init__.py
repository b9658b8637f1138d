"""A tenant's onboarding check: "send a test message now" and what each stage saw of it."""
