"""Layer 1: support PINs and the support desk (SPEC §8), the feature that the portal's
``/pin`` and ``/support`` pages, its support API and ``sealmail support`` all call. Imports
only ``core``; the mails it sends are rendered, sealed and queued by a mailer the caller
hands in (``branding.support_mail.support_mailer``)."""
