"""``python -m launch ...`` is the ``cronfleet`` command."""

from cli.entry import main

main()
