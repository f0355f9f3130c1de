"""``make chaos``: the long chaos run; prints the report, exits 1 if a
promise was broken. ``python -m tests.chaos --help``."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import Plan, report_file, run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--faults", type=int, default=21, help="faults injected, one at a time")
    parser.add_argument("--every-second", type=int, default=20, help="every-second jobs")
    parser.add_argument("--only", nargs="*", default=None, help="these fault kinds only")
    parser.add_argument("--every-few", type=int, default=60, help="every-3-seconds jobs")
    parser.add_argument("--report", type=Path, default=Path(".cronfleet/chaos/report.txt"))
    parser.add_argument(
        "--keep", action="store_true", help="keep the cluster's files (kept anyway if broken)"
    )
    args = parser.parse_args()
    plan = Plan(
        seed=args.seed,
        faults=args.faults,
        every_second=args.every_second,
        every_few=args.every_few,
        only=args.only,
        long_runs=10,
    )
    root = Path(tempfile.mkdtemp(prefix="cronfleet-chaos-"))
    with report_file(args.report) as say:
        report = run_chaos(root, plan, say)
        say(report.text())
        say(f"report: {args.report}")
        if report.broken or args.keep:
            say(f"the cluster's files (witness, logs, Postgres data): {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if report.broken else 0


if __name__ == "__main__":
    sys.exit(main())
