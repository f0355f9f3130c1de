"""The ``cronfleet`` command lives in the ``cli`` package (``cli.entry:main``);
``launch.cli:main`` stays for installs that point here."""

from __future__ import annotations

from cli.entry import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
