"""`python -m bench`: bring up what each measurement needs, run it, print ratios, tear down."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

from bench import (
    brokers,
    job_overhead,
    real_work,
    scaling,
    status_scaling,
    submit_throughput,
    time_to_verdict,
    upload_streaming,
)
from bench.harness import BenchRun, Figure

MEASUREMENTS = (
    "overhead",
    "verdict",
    "throughput",
    "status",
    "upload",
    "scaling",
    "brokers",
    "realwork",
)


def _machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split(" ")[2:3]
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"Redis {''.join(redis_version).removeprefix('v=')}, "
        f"load average at start {load[0]:.2f}"
    )


def _table(figures: list[Figure]) -> str:
    header = (
        "measurement",
        "figure",
        "baseline (same run)",
        "ratio median (min-max)",
        "target",
        "met",
    )
    rows = [header] + [
        (
            f.measurement,
            f.figure,
            f.baseline,
            f.ratio,
            f.target,
            "-" if f.met is None else ("yes" if f.met else "NO"),
        )
        for f in figures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=MEASUREMENTS,
        default=list(MEASUREMENTS),
        help="run only these measurements",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds and samples (a smoke run, not for the README)",
    )
    parser.add_argument(
        "--timeouts",
        default="1000,20",
        help="dramatiq_worker_timeout values (ms) for time to verdict; the first is the baseline",
    )
    parser.add_argument(
        "--processes",
        default="1,2",
        help="worker process counts for the scaling run; the first is the baseline "
        "(e.g. 1,2,4,8 on a bigger machine)",
    )
    parser.add_argument("--keep", action="store_true", help="keep logs in the run directory")
    args = parser.parse_args(argv)
    quick = args.quick
    timeouts = tuple(int(t) for t in args.timeouts.split(","))
    processes = tuple(int(n) for n in args.processes.split(","))
    runs: dict[str, Callable[[BenchRun], list[Figure]]] = {
        "overhead": lambda b: job_overhead.run(
            b, job_overhead.Config(jobs=1000 if quick else 3000, rounds=2 if quick else 3)
        ),
        "verdict": lambda b: time_to_verdict.run(
            b,
            time_to_verdict.Config(
                timeouts_ms=timeouts,
                rounds=1 if quick else 3,
                per_round=10 if quick else 30,
                idle_s=3 if quick else 10,
            ),
        ),
        "throughput": lambda b: submit_throughput.run(
            b, submit_throughput.Config(rounds=2 if quick else 3, duration_s=2 if quick else 6)
        ),
        "status": lambda b: status_scaling.run(
            b,
            status_scaling.Config(
                large=50_000 if quick else 1_000_000,
                rounds=2 if quick else 3,
                requests=50 if quick else 200,
            ),
        ),
        "upload": lambda b: upload_streaming.run(
            b, upload_streaming.Config(rounds=2 if quick else 3)
        ),
        "brokers": lambda b: brokers.run(
            b,
            brokers.Config(
                jobs=600 if quick else 1500,
                rounds=1 if quick else 3,
                per_round=8 if quick else 10,
            ),
        ),
        "realwork": lambda b: real_work.run(
            b,
            real_work.Config(rounds=2 if quick else 3, round_s=3.0 if quick else 8.0),
        ),
        "scaling": lambda b: scaling.run(
            b,
            scaling.Config(
                processes=processes, jobs=600 if quick else 1500, rounds=2 if quick else 3
            ),
        ),
    }
    print(f"rift bench: {_machine()}")
    started = time.monotonic()
    figures: list[Figure] = []
    failed: list[str] = []
    with BenchRun(verbose=args.keep) as bench:
        if args.keep:
            print(f"run directory (kept): {bench.root}")
        for name in MEASUREMENTS:
            if name not in args.only:
                continue
            try:
                figures += runs[name](bench)
            except Exception:
                failed.append(name)
                print(f"\n!! measurement {name} failed:", file=sys.stderr)
                traceback.print_exc()
    elapsed = time.monotonic() - started
    print(
        f"\nsummary ({elapsed / 60:.1f} min; every ratio is against a baseline measured in "
        "this run, median (min-max) over rounds)"
    )
    print(_table(figures))
    if failed:
        print(f"failed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
