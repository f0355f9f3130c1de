"""The ``cronfleet`` command lives in the ``cli`` package; ``launch.cli:main``
stays for installs that point here."""

from __future__ import annotations

from cli.app import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
