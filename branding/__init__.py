"""How sealmail looks: the sandboxed template environment, the notification and code emails,
and the portal's base layout and stylesheet. Imports only :mod:`core`."""
