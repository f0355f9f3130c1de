"""``python -m launch ...`` is the ``cronfleet`` command."""

from cli.app import main

main()
