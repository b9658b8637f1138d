"""The Outlook add-in "Send Secure": its manifests, pages, sign-in and send-time check."""
