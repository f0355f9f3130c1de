"""`python -m bench.peers [--quick] [--rounds N] [--peers NAME ...]`: `python -m bench --peers`."""

from __future__ import annotations

import sys

from bench.__main__ import main

if __name__ == "__main__":
    if "--peers" not in sys.argv:
        sys.argv.insert(1, "--peers")
    main()
