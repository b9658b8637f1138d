"""``/account``: a signed-in person's own sign-in: passkeys and remembered devices."""
