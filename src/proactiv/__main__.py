"""``python -m proactiv``: the ``proactiv`` command, for environments whose scripts folder is not on PATH."""

from proactiv.cli import main

main()
