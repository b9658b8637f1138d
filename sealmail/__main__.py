"""``python -m sealmail``: the command line (the same as the ``sealmail`` script)."""

from sealmail.cli.main import main

main()
