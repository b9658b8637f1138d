"""The recipient's area: from the notification's link (``/m/{token}``) and a one-time
code to the inbox, a message, its body frame and its attachments."""
