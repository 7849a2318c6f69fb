"""Benchmark of the data-preparation Glue job in local mode: records/s and peak memory of the driver.

Generates N synthetic labelled records (JSON Lines or CSV, spread over several files, with a realistic share of
duplicates, conflicting labels, empty texts and undecodable bytes), runs glue_jobs/prepare_dataset.py's `run` on a
local SparkSession and prints throughput and peak resident memory of the JVM (Spark driver and, locally, executors)
and of the Python driver process. Each size runs in its own child process, so peaks do not carry over.

    python scripts/bench_prepare_dataset.py --records 100000 1000000
    python scripts/bench_prepare_dataset.py --records 200000 --format csv --master 'local[2]'

Needs requirements/test-glue.txt (pyspark) and Java 17. Linux only (peaks read from /proc).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "glue_jobs"))

LABELS = [f"topic_{index:02d}" for index in range(10)]
WORDS = [f"w{index}" for index in range(3000)] + ["the", "a", "of", "and", "to", "in", "is", "café", "naïve", "über"]


def generate(records: int, folder: Path, input_format: str, files: int, seed: int = 0) -> None:
    """Writes ``records`` raw records into ``files`` files: ~2% duplicates, ~0.2% conflicting labels, ~0.5% empty
    texts and ~0.1% undecodable lines, the rest distinct texts of 4-30 words."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    handles = [(folder / f"part-{index:03d}.{input_format}").open("wb") for index in range(files)]
    try:
        if input_format == "csv":
            for handle in handles:
                handle.write(b"text,label\n")
        recent: list[tuple[str, str]] = []
        for number in range(records):
            roll = rng.random()
            if roll < 0.02 and recent:
                text, label = rng.choice(recent)
            elif roll < 0.022 and recent:
                text, label = rng.choice(recent)[0], rng.choice(LABELS)
            elif roll < 0.027:
                text, label = "", rng.choice(LABELS)
            else:
                text = " ".join(rng.choices(WORDS, k=rng.randint(4, 30))) + f" {number}"
                label = LABELS[hash(text) % len(LABELS)] if rng.random() < 0.7 else rng.choice(LABELS)
                if len(recent) < 1000:
                    recent.append((text, label))
                else:
                    recent[rng.randrange(1000)] = (text, label)
            handle = handles[number % files]
            if rng.random() < 0.001:
                handle.write(b"bad \xff\xfe bytes,topic_00\n" if input_format == "csv" else b'{"text": "\xff"}\n')
            elif input_format == "csv":
                buffer: list[str] = []
                writer = csv.writer(_ListWriter(buffer), lineterminator="\n")
                writer.writerow([text, label])
                handle.write("".join(buffer).encode("utf-8"))
            else:
                handle.write((json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n").encode("utf-8"))
            if (number + 1) % 200_000 == 0:
                print(f"  generated {number + 1:,} / {records:,} records", flush=True)
    finally:
        for handle in handles:
            handle.close()


class _ListWriter:
    def __init__(self, buffer: list[str]) -> None:
        self.buffer = buffer

    def write(self, text: str) -> None:
        self.buffer.append(text)


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class WorkerPeak(threading.Thread):
    """Samples the summed RSS of the JVM's child processes (the Python UDF workers) twice a second."""

    def __init__(self, jvm_pid: int) -> None:
        super().__init__(daemon=True)
        self.jvm_pid = jvm_pid
        self.peak_kib = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            total = 0
            for pid in _descendants(self.jvm_pid):
                try:
                    total += _rss_kib(pid, "VmRSS")
                except OSError:
                    continue
            self.peak_kib = max(self.peak_kib, total)


def run_single(records: int, input_format: str, files: int, master: str, driver_memory: str) -> dict[str, Any]:
    """Generates, runs the job once in this process, and returns the measurements."""
    import prepare_dataset

    workdir = Path(tempfile.mkdtemp(prefix="bench-prepare-dataset-"))
    try:
        print(f"generating {records:,} {input_format} records in {files} files", flush=True)
        started = time.perf_counter()
        generate(records, workdir / "raw", input_format, files)
        input_bytes = sum(path.stat().st_size for path in (workdir / "raw").iterdir())
        print(f"  {input_bytes / 2**20:.1f} MiB in {time.perf_counter() - started:.1f} s", flush=True)

        spark = prepare_dataset.build_local_spark_session(master, {"spark.driver.memory": driver_memory})
        jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
        sampler = WorkerPeak(jvm_pid)
        sampler.start()
        config = prepare_dataset.parse_job_arguments(
            {"input_uri": str(workdir / "raw"), "output_uri": str(workdir / "curated"), "input_format": input_format},
            local=True,
        )
        started = time.perf_counter()
        report = prepare_dataset.run(spark, config)
        seconds = time.perf_counter() - started
        sampler.stopped.set()
        jvm_peak_kib = _rss_kib(jvm_pid, "VmHWM")
        spark.stop()
        return {
            "records": records,
            "format": input_format,
            "input_mib": round(input_bytes / 2**20, 1),
            "seconds": round(seconds, 1),
            "records_per_s": round(report["records_in"] / seconds),
            "jvm_peak_rss_mib": round(jvm_peak_kib / 1024),
            "python_driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "python_workers_peak_rss_mib": round(sampler.peak_kib / 1024),
            "written": report["records_written"],
            "duplicates": report["duplicates"],
            "quarantined": report["quarantined"],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000], help="sizes to run (default: 100000)")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="input format (default: jsonl)")
    parser.add_argument("--files", type=int, default=8, help="input files per run (default: 8)")
    parser.add_argument("--master", default="local[*]", help="Spark master (default: local[*])")
    parser.add_argument("--driver-memory", default="2g", help="spark.driver.memory (default: 2g)")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
        result = run_single(args.records[0], args.format, args.files, args.master, args.driver_memory)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    results = []
    for records in args.records:
        command = [sys.executable, __file__, "--single", "--records", str(records), "--format", args.format]
        command += ["--files", str(args.files), "--master", args.master, "--driver-memory", args.driver_memory]
        child = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
        print("\n".join(line for line in child.stdout.splitlines() if not line.startswith("RESULT ")))
        if child.returncode != 0 or not lines:
            print(f"error: the run with {records:,} records failed (exit code {child.returncode})", file=sys.stderr)
            return 1
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    header = ["records", "format", "input_mib", "seconds", "records_per_s"]
    header += ["jvm_peak_rss_mib", "python_driver_peak_rss_mib", "python_workers_peak_rss_mib"]
    print("\n" + " | ".join(header))
    for result in results:
        print(" | ".join(str(result[key]) for key in header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
