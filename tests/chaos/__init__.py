"""The chaos suite (tests/chaos/harness.py): `make chaos` for the long run,
tests/chaos/test_chaos.py for the short one inside `make test`."""
