#!/usr/bin/env python3
"""Synth benchmark: ``cdk synth`` of the whole default stage against a minimal one-bucket CDK app.

Both run through the same pinned CDK CLI, Node.js and Python on this machine, interleaved (platform, baseline,
platform, ...) so load changes hit both alike. Prints each run, the medians and their ratio (goal: at most 1.6).

    make setup && .venv/bin/python scripts/bench_synth.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MINIMAL_APP = """
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

app = cdk.App()
stack = cdk.Stack(app, "Minimal")
s3.Bucket(stack, "Bucket")
app.synth()
"""


def synth_command(app: str | None, outdir: Path) -> list[str]:
    command = [str(REPO / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--output", str(outdir)]
    return command + (["--app", app] if app else [])


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each app after one warm-up (default 5)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: give at least 1")
    if not (REPO / "node_modules" / ".bin" / "cdk").exists():
        sys.exit("error: node_modules/.bin/cdk is missing; run `make setup` first")

    env = {**os.environ, "PATH": f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{Path(sys.executable).parent}"
           f"{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        minimal = Path(tmp) / "minimal_app.py"
        minimal.write_text(MINIMAL_APP)
        apps = {"platform (dev, 4 compliance packs)": None, "baseline (one bucket)": f"{sys.executable} {minimal}"}
        times: dict[str, list[float]] = {name: [] for name in apps}
        for run in range(args.runs + 1):
            for name, app in apps.items():
                seconds = timed(synth_command(app, Path(tmp) / f"out-{run}-{len(times[name])}"), env)
                label = "warm-up" if run == 0 else f"run {run}/{args.runs}"
                print(f"{label:>10}  {name:<36} {seconds:6.2f} s", flush=True)
                if run > 0:
                    times[name].append(seconds)

    medians = {name: statistics.median(values) for name, values in times.items()}
    platform, baseline = medians.values()
    for name, value in medians.items():
        print(f"median  {name:<36} {value:6.2f} s")
    print(f"ratio   platform / baseline = {platform / baseline:.2f} (goal <= 1.6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
