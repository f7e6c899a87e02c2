"""Regenerate the monitoring files: `python -m grafana`, or verify them with `--check`."""

from __future__ import annotations

import argparse
import sys

from grafana import artefacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail if a committed file differs from generation"
    )
    args = parser.parse_args(argv)
    paths = artefacts.stale() if args.check else artefacts.write()
    for path in paths:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(artefacts.REPO)}")
    return 1 if args.check and paths else 0


if __name__ == "__main__":
    sys.exit(main())
