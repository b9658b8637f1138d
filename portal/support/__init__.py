"""The portal's support area (SPEC §8): ``/pin`` for account contacts (:mod:`.pin`),
``/support`` for the support desk (:mod:`.desk`) and ``POST /api/v1/support/verify``
(:mod:`.api`); web handlers only, calling the ``support`` package. :mod:`.routes` lists
their URLs."""
