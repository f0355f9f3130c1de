"""``python -m launch ...`` is the ``cronfleet`` command."""

from launch.cli import main

main()
