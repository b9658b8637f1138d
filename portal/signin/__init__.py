"""The one email-code sign-in every door uses: the code, where it rests, and the steps."""
