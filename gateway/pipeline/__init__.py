"""Stage 2 of a message: after intake, decide per recipient and run the handlers of each
disposition (:mod:`.runner` claims and runs, :mod:`.table` names the handlers)."""
