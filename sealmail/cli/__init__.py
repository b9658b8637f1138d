"""The ``sealmail`` command line: :mod:`sealmail.cli.main` builds the root group from one
list; :mod:`sealmail.cli.common` is what every command shares; every other module is one
command or command group, named after it."""
