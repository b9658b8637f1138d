"""The recipient's area: the landing page (``landing``), from the notification's link
(``/m/{token}``) and a one-time code to a session (``entry``), the inbox of conversations
(``inbox``), the conversation view (``thread``) with each message's body frame
(``message``), attachments and downloads (``attachments``, ``downloads``, ``paper`` for the
PDF), the revoked / expired page and "ask for a new copy" (``gone``), and what reading tells
the sender (``receipts``: opened, downloaded, the "opened" receipt). ``access`` scopes every
lookup to the session's tenant and address; ``people`` words names and dates."""
