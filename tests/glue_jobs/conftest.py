"""Shared fixtures for the Glue job tests: job-run helpers over the session's one local SparkSession (``spark``,
tests/conftest.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

GLUE_JOBS_DIR = Path(__file__).resolve().parents[2] / "glue_jobs"
# The job imports its transforms as the top-level module `dataset_transforms`, as on Glue (--extra-py-files).
sys.path.insert(0, str(GLUE_JOBS_DIR))

import dataset_transforms  # noqa: E402
import prepare_dataset  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402


class JobRunner:
    """Runs the real job (the same `run` the Glue entry point calls) with Glue-style string arguments."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def __call__(self, input_dir: Path, output_dir: Path, **arguments: str) -> dict[str, Any]:
        values = {"input_uri": str(input_dir), "output_uri": str(output_dir), **arguments}
        config = prepare_dataset.parse_job_arguments(values, local=True)
        return prepare_dataset.run(self.spark, config)


@pytest.fixture(scope="session")
def run_job(spark: SparkSession) -> JobRunner:
    return JobRunner(spark)


def read_jsonl_folder(folder: Path) -> list[dict[str, Any]]:
    """Every record of the JSON Lines part files in ``folder`` (Spark's checksum files skipped)."""
    records: list[dict[str, Any]] = []
    for part in sorted(folder.glob("*.json")):
        with part.open(encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records


@pytest.fixture(scope="session")
def published() -> Any:
    """Reads what a run published: the run prefix that ``<output_dir>/_LATEST`` names."""
    return read_published


def published_prefix(output_dir: Path) -> Path:
    """The run prefix named by ``_LATEST``, as consumers resolve it (there is no ``latest/`` copy)."""
    pointer = json.loads((output_dir / "_LATEST").read_text(encoding="utf-8"))
    prefix = Path(pointer["run_prefix"])
    assert pointer["run_prefix"].endswith(f"/runs/{pointer['run_id']}/"), pointer
    assert prefix == output_dir / "runs" / pointer["run_id"]
    return prefix


def read_published(output_dir: Path) -> dict[str, Any]:
    """The published dataset: splits, quarantine, labels and report of the run that ``_LATEST`` names."""
    run = published_prefix(output_dir)
    return {
        "splits": {split: read_jsonl_folder(run / split) for split in dataset_transforms.SPLITS},
        "quarantine": read_jsonl_folder(run / "quarantine"),
        "labels": json.loads((run / "labels.json").read_text(encoding="utf-8")),
        "report": json.loads((run / "data_report.json").read_text(encoding="utf-8")),
    }
