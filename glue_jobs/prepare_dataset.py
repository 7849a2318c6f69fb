"""Glue 5.0 (Spark 3.5, Python 3.11) job: raw labelled text in S3 to validated, deduplicated, split training data.

On AWS Glue the arguments arrive as job arguments (``getResolvedOptions``); ``dataset_transforms.py`` must be shipped
with ``--extra-py-files``. Locally the same code runs on a local SparkSession without the Glue libraries:

    python glue_jobs/prepare_dataset.py --local true --input_uri ./raw --output_uri ./curated --input_format csv

Output (see glue_jobs/README.md for the full contract):

    <output_uri>/runs/<run_id>/{train,validation,test}/*.json   JSON Lines {"id", "text", "label"}
    <output_uri>/runs/<run_id>/quarantine/*.json                JSON Lines {"reason", "detail", "source_file",
                                                                            "original" | "original_base64"}
    <output_uri>/runs/<run_id>/labels.json                      ["label", ...] in class-index order
    <output_uri>/runs/<run_id>/data_report.json                 counts; records_in = written + duplicates + quarantined
    <output_uri>/_LATEST                                        {"run_id", "run_prefix", "data_report", ...}

Publishing is writing ``_LATEST``, one small object, after the run prefix is complete and its counts were checked
against the files written: readers resolve the current dataset through it and never see a partial one. A run that
fails leaves ``_LATEST`` as it was and removes its own run prefix. (Earlier versions also copied the run into
``latest/``; that copy was not atomic, and a leftover one is removed when a run publishes.)
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import json
import logging
import math
import os
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

# On Glue the transforms module arrives through --extra-py-files; locally it sits next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataset_transforms as transforms

LOG = logging.getLogger("prepare_dataset")

INPUT_FORMATS = ("csv", "jsonl")

# Every job argument and its default; None marks a required argument. Values are strings, as Glue passes them.
ARGUMENT_DEFAULTS: dict[str, str | None] = {
    "input_uri": None,
    "output_uri": None,
    "input_format": "jsonl",
    "text_field": "text",
    "label_field": "label",
    "id_field": "",
    "encoding": "utf-8",
    "split_ratios": "0.8,0.1,0.1",
    "seed": "42",
    "min_chars": "1",
    "max_chars": "10000",
    "labels": "",
    "run_id": "",
}

ARGUMENT_HELP: dict[str, str] = {
    "input_uri": "prefix holding the raw files (s3://bucket/prefix on Glue; a folder or URI locally); read recursively",
    "output_uri": "prefix that receives runs/<run_id>/ and the _LATEST pointer to the last successful run",
    "input_format": "csv (header row, RFC 4180 quoting) or jsonl (one JSON object per line)",
    "text_field": "name of the CSV column or JSON key holding the text",
    "label_field": "name of the CSV column or JSON key holding the label",
    "id_field": "optional column or key holding a record id; empty: SHA-256 of the normalised text",
    "encoding": "Python codec of the input bytes (ASCII-compatible: utf-8, cp1252, latin-1, shift_jis, ...)",
    "split_ratios": "train,validation,test ratios summing to 1",
    "seed": "integer mixed into the split hash; the same data and seed give the same splits",
    "min_chars": "minimum text length in characters after normalisation",
    "max_chars": "maximum text length in characters after normalisation",
    "labels": "optional allowed labels in class order, comma-separated or a JSON array; empty: derived from the data",
    "run_id": "name of this run's prefix; empty: the Glue job run id, or a UTC timestamp locally",
}

# Stateful 7-bit codecs spell non-ASCII characters with ASCII bytes, so a quote or comma byte may be part of a letter.
_STATEFUL_CODECS = ("iso2022", "hz")
_RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class JobArgumentError(ValueError):
    """A job argument has a value the job cannot use; the message names it, the value and what is allowed."""


class DatasetPreparationError(RuntimeError):
    """The input cannot give a usable dataset (missing, empty, wrong fields, nothing valid); nothing was published."""


@dataclass(frozen=True)
class JobConfig:
    """Validated job arguments."""

    input_uri: str
    output_uri: str
    input_format: str
    text_field: str
    label_field: str
    id_field: str | None
    encoding: str
    split_ratios: tuple[float, float, float]
    seed: int
    min_chars: int
    max_chars: int
    labels: tuple[str, ...] | None
    run_id: str

    @property
    def run_prefix(self) -> str:
        return f"{self.output_uri}/runs/{self.run_id}"

    @property
    def legacy_latest_prefix(self) -> str:
        """The copy of the last run that earlier versions published; removed when a run publishes."""
        return f"{self.output_uri}/latest"

    @property
    def latest_pointer(self) -> str:
        return f"{self.output_uri}/_LATEST"


# ---------------------------------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------------------------------


def _bad(name: str, value: str, problem: str) -> JobArgumentError:
    return JobArgumentError(f"--{name}={value!r} {problem}")


def _parse_int(name: str, value: str, minimum: int | None = None) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise _bad(name, value, "is not an integer; give a whole number such as 42") from None
    if minimum is not None and number < minimum:
        raise _bad(name, value, f"is below the minimum {minimum}")
    return number


def _parse_ratios(value: str) -> tuple[float, float, float]:
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 3:
        raise _bad("split_ratios", value, "must hold three numbers train,validation,test, e.g. 0.8,0.1,0.1")
    try:
        ratios = tuple(float(part) for part in parts)
    except ValueError:
        raise _bad("split_ratios", value, "must hold three numbers train,validation,test, e.g. 0.8,0.1,0.1") from None
    if not all(math.isfinite(ratio) and 0 <= ratio <= 1 for ratio in ratios):
        raise _bad("split_ratios", value, "must hold ratios between 0 and 1, e.g. 0.8,0.1,0.1")
    if ratios[0] <= 0:
        raise _bad("split_ratios", value, "gives train no records; the train ratio must be above 0")
    if abs(sum(ratios) - 1) > 1e-6:
        raise _bad("split_ratios", value, f"must sum to 1 (these sum to {sum(ratios):g}), e.g. 0.8,0.1,0.1")
    return ratios[0], ratios[1], ratios[2]


def _parse_encoding(value: str) -> str:
    try:
        info = codecs.lookup(value)
    except LookupError:
        raise _bad(
            "encoding", value, "is not an encoding known to Python; use a codec name such as utf-8 or cp1252"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise _bad("encoding", value, "is a binary transform, not a text encoding; use e.g. utf-8 or cp1252")
    probe = '\n\r,"{}:\\ az09'
    ascii_compatible = info.name == "utf-8-sig" or (
        probe.encode(info.name) == probe.encode("ascii") and not info.name.startswith(_STATEFUL_CODECS)
    )
    if not ascii_compatible:
        raise _bad(
            "encoding",
            value,
            "is not ASCII-compatible (newline, quote and comma bytes would not be found in it); "
            "convert the files to utf-8 first, or use an ASCII-compatible codec such as utf-8, cp1252 or shift_jis",
        )
    return value


def _parse_labels(value: str) -> tuple[str, ...] | None:
    if not value.strip():
        return None
    if value.lstrip().startswith("["):
        try:
            items = json.loads(value)
        except json.JSONDecodeError as error:
            raise _bad("labels", value, f'is not a valid JSON array ({error.msg}); e.g. ["a","b"] or a,b') from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise _bad("labels", value, 'must be a JSON array of strings, e.g. ["a","b"], or a comma list a,b')
    else:
        items = value.split(",")
    labels = [transforms.normalise_label(item) for item in items]
    if any(label is None for label in labels):
        raise _bad("labels", value, "holds an empty label; list non-empty labels such as a,b")
    duplicates = sorted({label for label in labels if labels.count(label) > 1 and label is not None})
    if duplicates:
        raise _bad("labels", value, f"lists {duplicates} more than once; list each label once")
    return tuple(label for label in labels if label is not None)


def _normalise_uri(name: str, value: str, *, local: bool) -> str:
    uri = value.strip()
    if not uri:
        raise _bad(name, value, "is empty; give an s3://bucket/prefix (or a local folder with --local true)")
    if "://" in uri or uri.startswith("file:"):
        if not local and not uri.startswith(("s3://", "s3a://")):
            raise _bad(name, value, "must be an s3:// URI on Glue")
        return uri.rstrip("/")
    if not local:
        raise _bad(name, value, "must be an s3:// URI on Glue (local folders need --local true)")
    return os.path.abspath(uri).rstrip("/") or "/"


def _default_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def parse_job_arguments(values: Mapping[str, str], *, local: bool, default_run_id: str | None = None) -> JobConfig:
    """Validates job arguments (strings, as Glue passes them) into a JobConfig.

    Absent keys take ``ARGUMENT_DEFAULTS``; empty strings mean "not set" for the optional ones.
    """
    unknown = sorted(set(values) - set(ARGUMENT_DEFAULTS))
    if unknown:
        raise JobArgumentError(f"unknown job arguments {unknown}; known: {sorted(ARGUMENT_DEFAULTS)}")
    merged: dict[str, str] = {}
    for name, default in ARGUMENT_DEFAULTS.items():
        value = values.get(name, default)
        if value is None:
            raise JobArgumentError(f"--{name} is required: {ARGUMENT_HELP[name]}")
        merged[name] = value

    input_uri = _normalise_uri("input_uri", merged["input_uri"], local=local)
    output_uri = _normalise_uri("output_uri", merged["output_uri"], local=local)
    if f"{output_uri}/".startswith(f"{input_uri}/"):
        raise _bad(
            "output_uri", merged["output_uri"], f"lies inside --input_uri={input_uri!r}; the next run would read it"
        )

    input_format = merged["input_format"].strip().lower()
    if input_format not in INPUT_FORMATS:
        raise _bad("input_format", merged["input_format"], f"is not one of {list(INPUT_FORMATS)}")

    fields: dict[str, str] = {}
    for name in ("text_field", "label_field"):
        fields[name] = merged[name].strip()
        if not fields[name]:
            raise _bad(name, merged[name], "is empty; name the column or key that holds it")
    if fields["text_field"] == fields["label_field"]:
        raise _bad("label_field", merged["label_field"], "is the same as --text_field; they must differ")
    id_field = merged["id_field"].strip() or None
    if id_field in fields.values():
        raise _bad("id_field", merged["id_field"], "is the same as --text_field or --label_field; they must differ")

    min_chars = _parse_int("min_chars", merged["min_chars"], minimum=1)
    max_chars = _parse_int("max_chars", merged["max_chars"], minimum=1)
    if min_chars >= max_chars:
        raise _bad("max_chars", merged["max_chars"], f"must be greater than --min_chars={min_chars}")

    run_id = merged["run_id"].strip() or default_run_id or _default_run_id()
    if not _RUN_ID_PATTERN.match(run_id):
        raise _bad("run_id", run_id, "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit")

    return JobConfig(
        input_uri=input_uri,
        output_uri=output_uri,
        input_format=input_format,
        text_field=fields["text_field"],
        label_field=fields["label_field"],
        id_field=id_field,
        encoding=_parse_encoding(merged["encoding"].strip()),
        split_ratios=_parse_ratios(merged["split_ratios"]),
        seed=_parse_int("seed", merged["seed"]),
        min_chars=min_chars,
        max_chars=max_chars,
        labels=_parse_labels(merged["labels"]),
        run_id=run_id,
    )


def parse_local_argv(argv: Sequence[str]) -> dict[str, str]:
    """Parses ``--name value`` command-line arguments the way Glue would pass them, for local runs."""
    parser = argparse.ArgumentParser(
        prog="prepare_dataset.py",
        description="Prepare labelled text for training (AWS Glue job; --local true runs it on a local Spark).",
    )
    parser.add_argument("--local", default="false", help="true: run on a local SparkSession without Glue")
    for name, default in ARGUMENT_DEFAULTS.items():
        shown = "required" if default is None else f"default: {default!r}"
        parser.add_argument(f"--{name}", required=default is None, help=f"{ARGUMENT_HELP[name]} ({shown})")
    parsed = vars(parser.parse_args(list(argv)))
    parsed.pop("local")
    return {name: value for name, value in parsed.items() if value is not None}


def is_local_run(argv: Sequence[str]) -> bool:
    """True when ``--local true`` (or ``--local=true``) is among the arguments."""
    for index, arg in enumerate(argv):
        if arg == "--local" and index + 1 < len(argv):
            return argv[index + 1].strip().lower() == "true"
        if arg.startswith("--local="):
            return arg.split("=", 1)[1].strip().lower() == "true"
    return False


# ---------------------------------------------------------------------------------------------------------------------
# Storage: Hadoop FileSystem through Spark's JVM, so the same calls serve s3:// on Glue and local folders
# ---------------------------------------------------------------------------------------------------------------------


class HadoopStorage:
    """Small-object and prefix operations on any Hadoop filesystem URI (s3:// through EMRFS on Glue, file: locally)."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm: Any = spark.sparkContext._jvm
        self._conf: Any = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]

    def _resolve(self, uri: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self._conf), path

    def exists(self, uri: str) -> bool:
        fs, path = self._resolve(uri)
        return bool(fs.exists(path))

    def data_files(self, uri: str, *, limit: int | None = None) -> list[str]:
        """The non-empty files under the prefix that Spark would read (names starting with '_' or '.' are hidden),
        as fully qualified URIs; at most ``limit`` of them."""
        fs, path = self._resolve(uri)
        root = str(fs.makeQualified(path).toString()).rstrip("/")
        found: list[str] = []
        files = fs.listFiles(path, True)
        while files.hasNext() and (limit is None or len(found) < limit):
            status = files.next()
            file_uri = str(status.getPath().toString())
            relative = file_uri[len(root) :].strip("/")
            if status.getLen() > 0 and not any(part.startswith(("_", ".")) for part in relative.split("/")):
                found.append(file_uri)
        return found

    def has_data_files(self, uri: str) -> bool:
        """True when the prefix holds a file Spark would read."""
        return bool(self.data_files(uri, limit=1))

    def read_head(self, uri: str, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` first bytes of a file, decompressed the way Spark reads it (by the file's suffix)."""
        fs, path = self._resolve(uri)
        codec = self._jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(self._conf).getCodec(path)
        stream = fs.open(path)
        try:
            if codec is not None:
                stream = codec.createInputStream(stream)
            return bytes(stream.readNBytes(max_bytes))
        finally:
            stream.close()

    def total_bytes(self, uri: str) -> int:
        fs, path = self._resolve(uri)
        return int(fs.getContentSummary(path).getLength())

    def write_text(self, uri: str, text: str) -> None:
        fs, path = self._resolve(uri)
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def delete(self, uri: str) -> None:
        fs, path = self._resolve(uri)
        fs.delete(path, True)


def _java_error_class(error: Exception) -> str:
    java_exception = getattr(error, "java_exception", None)
    return str(java_exception.getClass().getName()) if java_exception is not None else type(error).__name__


# ---------------------------------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------------------------------


def _check_input(storage: HadoopStorage, config: JobConfig) -> None:
    try:
        has_files = storage.has_data_files(config.input_uri)
    except Exception as error:
        if _java_error_class(error) == "java.io.FileNotFoundException":
            raise DatasetPreparationError(
                f"--input_uri={config.input_uri!r} does not exist; upload the raw files there or fix the prefix"
            ) from None
        raise DatasetPreparationError(
            f"--input_uri={config.input_uri!r} cannot be listed ({_java_error_class(error)}: {error}); "
            "check the prefix and that the job role may read it"
        ) from error
    if not has_files:
        raise DatasetPreparationError(
            f"--input_uri={config.input_uri!r} holds no data files (empty files and names starting with '_' or '.' "
            "are ignored); upload the raw files there or fix the prefix"
        )


def _read_records(spark: SparkSession, storage: HadoopStorage, config: JobConfig) -> DataFrame:
    paths = [config.input_uri]
    if config.input_format == "jsonl":
        return transforms.read_jsonl_records(
            spark,
            paths,
            encoding=config.encoding,
            text_field=config.text_field,
            label_field=config.label_field,
            id_field=config.id_field,
        )
    files_by_header = _csv_files_by_header(storage, config)
    headers = [header for header in files_by_header if header]
    shown = ", ".join(f"{list(header)} ({len(files_by_header[header])} files)" for header in headers[:5])
    wanted = {"text_field": config.text_field, "label_field": config.label_field, "id_field": config.id_field}
    for name, field in wanted.items():
        if headers and field is not None and not any(field in header for header in headers):
            raise DatasetPreparationError(
                f"--{name}={field!r} is not a column of any CSV header under {config.input_uri} (headers: {shown}"
                f"{', ...' if len(headers) > 5 else ''}); pick one of those columns"
            )
    for header in headers:
        problem = transforms.csv_header_problem(
            header, text_field=config.text_field, label_field=config.label_field, id_field=config.id_field
        )
        if problem:
            files = files_by_header[header]
            LOG.warning(
                "%d CSV files have the header %s: %s; their records are quarantined as %s (first: %s)",
                len(files),
                list(header),
                problem,
                transforms.REASON_MISSING_COLUMN,
                files[0],
            )
    return transforms.read_csv_records(
        spark,
        files_by_header,
        encoding=config.encoding,
        text_field=config.text_field,
        label_field=config.label_field,
        id_field=config.id_field,
    )


# First bytes read to find a CSV header; a header longer than the first size is read again with the next one.
_CSV_HEADER_READ_SIZES = (64 * 1024, 1024 * 1024, 16 * 1024 * 1024)
# Files whose headers are read at once: S3 answers each small read in tens of milliseconds, so they overlap.
_CSV_HEADER_READERS = 16


def _csv_header_of(storage: HadoopStorage, file_uri: str, encoding: str) -> tuple[str, ...]:
    for size in _CSV_HEADER_READ_SIZES:
        head = storage.read_head(file_uri, size)
        header = transforms.parse_csv_header(head, encoding, complete=len(head) < size)
        if header is not None:
            return header
    raise DatasetPreparationError(
        f"the CSV header of {file_uri} does not end within its first {_CSV_HEADER_READ_SIZES[-1] // 2**20} MiB "
        "(an unclosed quote?); fix the file's first line or remove the file from --input_uri"
    )


def _csv_files_by_header(storage: HadoopStorage, config: JobConfig) -> dict[tuple[str, ...], list[str]]:
    """Every CSV data file under --input_uri, grouped by its own header (each file is read by its own columns)."""
    files = storage.data_files(config.input_uri)
    with ThreadPoolExecutor(max_workers=_CSV_HEADER_READERS) as pool:
        headers = list(pool.map(lambda uri: _csv_header_of(storage, uri, config.encoding), files))
    grouped: dict[tuple[str, ...], list[str]] = {}
    for file_uri, header in zip(files, headers, strict=True):
        grouped.setdefault(header, []).append(file_uri)
    return grouped


def prepare(spark: SparkSession, config: JobConfig, storage: HadoopStorage | None = None) -> DataFrame:
    """Reads, normalises, validates, deduplicates and splits; the result has one row per input record."""
    records = _read_records(spark, storage or HadoopStorage(spark), config)
    records = transforms.normalise(records, derive_ids=config.id_field is None)
    records = transforms.validate(
        records,
        min_chars=config.min_chars,
        max_chars=config.max_chars,
        allowed_labels=config.labels,
        require_id=config.id_field is not None,
    )
    return transforms.assign_splits(transforms.deduplicate(records), ratios=config.split_ratios, seed=config.seed)


def summarise(prepared: DataFrame) -> dict[str, Any]:
    """Counts by outcome, reason, split and label, from one small aggregate (no record reaches the driver)."""
    outcome = transforms.outcome()
    parse_failures = [transforms.REASON_UNDECODABLE, transforms.REASON_MALFORMED, transforms.REASON_BLANK_LINE]
    parsed = F.col("reject_reason").isNull() | ~F.col("reject_reason").isin(parse_failures)
    rows = (
        prepared.groupBy(
            outcome.alias("outcome"),
            F.col("reject_reason").alias("reason"),
            F.col("split"),
            F.when(outcome == "written", F.col("label")).alias("label"),
        )
        .agg(
            F.count(F.lit(1)).alias("records"),
            F.count(F.when(parsed, 1)).alias("parsed"),
            F.count(F.when(F.col("has_text_field"), 1)).alias("with_text_field"),
            F.count(F.when(F.col("has_label_field"), 1)).alias("with_label_field"),
            F.count(F.when(F.col("has_id_field"), 1)).alias("with_id_field"),
        )
        .collect()
    )
    summary: dict[str, Any] = {
        "records_in": 0,
        "parsed": 0,
        "with_text_field": 0,
        "with_label_field": 0,
        "with_id_field": 0,
        "records_written": 0,
        "written_per_split": dict.fromkeys(transforms.SPLITS, 0),
        "duplicates": 0,
        "quarantined": 0,
        "quarantined_per_reason": dict.fromkeys(transforms.QUARANTINE_REASONS, 0),
        "written_per_label": {},
    }
    for row in rows:
        summary["records_in"] += row["records"]
        for key in ("parsed", "with_text_field", "with_label_field", "with_id_field"):
            summary[key] += row[key]
        if row["outcome"] == "written":
            summary["records_written"] += row["records"]
            summary["written_per_split"][row["split"]] += row["records"]
            per_label = summary["written_per_label"].setdefault(row["label"], dict.fromkeys(transforms.SPLITS, 0))
            per_label[row["split"]] += row["records"]
        elif row["outcome"] == "duplicate":
            summary["duplicates"] += row["records"]
        else:
            summary["quarantined"] += row["records"]
            summary["quarantined_per_reason"][row["reason"]] += row["records"]
    summary["written_per_label"] = dict(sorted(summary["written_per_label"].items()))
    return summary


def _check_fields_found(summary: Mapping[str, Any], config: JobConfig) -> None:
    # CSV headers are checked before reading; for JSON Lines a field that no parsed record holds is a wrong name.
    if summary["parsed"] == 0:
        return
    wanted = {"text_field": config.text_field, "label_field": config.label_field, "id_field": config.id_field}
    for name, field in wanted.items():
        if field is not None and summary[f"with_{name}"] == 0:
            raise DatasetPreparationError(
                f"--{name}={field!r} is in none of the {summary['parsed']} parsed records of {config.input_uri}; "
                "check the key name (see the records' keys in a sample line)"
            )


def build_report(summary: Mapping[str, Any], config: JobConfig, labels: Sequence[str]) -> dict[str, Any]:
    """The data_report.json document."""
    report: dict[str, Any] = {
        "run_id": config.run_id,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {
            **{key: value for key, value in asdict(config).items() if key not in ("run_id", "split_ratios", "labels")},
            "split_ratios": dict(zip(transforms.SPLITS, config.split_ratios, strict=True)),
            "labels": None if config.labels is None else list(config.labels),
        },
        "records_in": summary["records_in"],
        "records_written": summary["records_written"],
        "written_per_split": summary["written_per_split"],
        "duplicates": summary["duplicates"],
        "quarantined": summary["quarantined"],
        "quarantined_per_reason": summary["quarantined_per_reason"],
        "labels": list(labels),
        "written_per_label": summary["written_per_label"],
        "output": {"run_prefix": f"{config.run_prefix}/", "latest_pointer": config.latest_pointer},
    }
    return report


def _write_outputs(prepared: DataFrame, storage: HadoopStorage, config: JobConfig, report: Mapping[str, Any]) -> None:
    for split in transforms.SPLITS:
        LOG.info(
            "writing %s (%d records) to %s/%s/", split, report["written_per_split"][split], config.run_prefix, split
        )
        transforms.split_records(prepared, split).write.mode("errorifexists").json(f"{config.run_prefix}/{split}")
    LOG.info("writing %d quarantined records to %s/quarantine/", report["quarantined"], config.run_prefix)
    transforms.quarantine_records(prepared).write.mode("errorifexists").json(f"{config.run_prefix}/quarantine")
    _check_written_counts(prepared.sparkSession, config, report)
    storage.write_text(f"{config.run_prefix}/labels.json", json.dumps(report["labels"], ensure_ascii=False) + "\n")
    # The report goes last: its presence marks a complete run prefix.
    storage.write_text(f"{config.run_prefix}/data_report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def _check_written_counts(spark: SparkSession, config: JobConfig, report: Mapping[str, Any]) -> None:
    """Counts the records in the files just written, independently of the summary, and fails on any difference.

    The report's numbers come from an aggregate over the prepared rows; the files come from separate writes of the
    same rows. Reading the files back catches a write that lost or repeated records (or rows recomputed differently
    between the aggregate and a write) before anything is published.
    """
    expected = {**report["written_per_split"], "quarantine": report["quarantined"]}
    found = {folder: spark.read.text(f"{config.run_prefix}/{folder}").count() for folder in expected}
    if found != expected:
        raise DatasetPreparationError(
            f"counts do not add up in {config.run_prefix}: the files hold {found} records, the data report counted "
            f"{expected}; nothing was published. Run the job again; if it repeats, report it with this message"
        )


def _publish(storage: HadoopStorage, config: JobConfig) -> None:
    """Points ``_LATEST`` at the complete run prefix: one small object, written whole (an S3 PUT is atomic), so
    readers see either the previous run or this one, never a mix."""
    LOG.info("publishing %s through %s", config.run_prefix, config.latest_pointer)
    pointer = {
        "run_id": config.run_id,
        "run_prefix": f"{config.run_prefix}/",
        "data_report": f"{config.run_prefix}/data_report.json",
        "labels": f"{config.run_prefix}/labels.json",
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    storage.write_text(config.latest_pointer, json.dumps(pointer) + "\n")
    # A latest/ copy left by an earlier version would keep an old dataset where readers used to look; once the
    # pointer is written its removal is best-effort: a failure here does not undo the publication.
    try:
        if storage.exists(config.legacy_latest_prefix):
            LOG.warning(
                "removing %s, left by an earlier version (readers resolve _LATEST)", config.legacy_latest_prefix
            )
            storage.delete(config.legacy_latest_prefix)
    except Exception as error:
        LOG.warning("could not remove %s (%s); delete it by hand", config.legacy_latest_prefix, error)


# Target input bytes per shuffle partition; the prepared rows are a little larger than the raw records.
_BYTES_PER_PARTITION = 64 * 1024 * 1024


def _fit_shuffle_partitions(spark: SparkSession, input_bytes: int) -> None:
    """Lowers spark.sql.shuffle.partitions to what the input needs (never below the cluster's parallelism).

    The persisted result keeps the partitioning of its last shuffle (adaptive execution does not coalesce a cached
    plan), and every write and count then scans all of them: 200 mostly empty partitions cost seconds each.
    """
    configured = int(spark.conf.get("spark.sql.shuffle.partitions") or "200")
    needed = max(spark.sparkContext.defaultParallelism, math.ceil(input_bytes / _BYTES_PER_PARTITION))
    partitions = min(configured, needed)
    LOG.info("input is %.1f MiB: %d shuffle partitions", input_bytes / 2**20, partitions)
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))


def run(spark: SparkSession, config: JobConfig) -> dict[str, Any]:
    """Runs the whole job on ``spark`` and returns the data report; raises DatasetPreparationError on bad input."""
    storage = HadoopStorage(spark)
    # Split folders hold only the part files the training side reads.
    spark.sparkContext._jsc.hadoopConfiguration().set(  # type: ignore[union-attr]
        "mapreduce.fileoutputcommitter.marksuccessfuljobs", "false"
    )
    LOG.info(
        "run %s: %s (%s, %s) -> %s",
        config.run_id,
        config.input_uri,
        config.input_format,
        config.encoding,
        config.run_prefix,
    )
    if storage.exists(config.run_prefix):
        raise DatasetPreparationError(f"{config.run_prefix} already exists; pass a new --run_id (or leave it empty)")
    _check_input(storage, config)
    _fit_shuffle_partitions(spark, storage.total_bytes(config.input_uri))

    # Disk-only: the prepared rows are reused by every write and count, and executor memory stays flat.
    prepared = prepare(spark, config, storage).persist(StorageLevel.DISK_ONLY)
    try:
        LOG.info("reading, validating and splitting records")
        summary = summarise(prepared)
        LOG.info(
            "%d records in: %d to write, %d duplicates, %d quarantined",
            summary["records_in"],
            summary["records_written"],
            summary["duplicates"],
            summary["quarantined"],
        )
        _check_fields_found(summary, config)
        if summary["records_written"] == 0:
            reasons = {reason: n for reason, n in summary["quarantined_per_reason"].items() if n}
            raise DatasetPreparationError(
                f"no valid record remains in {config.input_uri}: {summary['records_in']} records in, "
                f"{summary['duplicates']} duplicates, quarantined per reason {reasons}; nothing was published"
            )
        labels = list(config.labels) if config.labels is not None else list(summary["written_per_label"])
        report = build_report(summary, config, labels)
        try:
            _write_outputs(prepared, storage, config, report)
        except BaseException:
            LOG.error("removing the incomplete run prefix %s", config.run_prefix)
            storage.delete(config.run_prefix)
            raise
        _publish(storage, config)
        LOG.info("done: %s", json.dumps(report["written_per_split"]))
        return report
    finally:
        prepared.unpersist()


def build_local_spark_session(master: str = "local[*]", config: Mapping[str, str] | None = None) -> SparkSession:
    """A local SparkSession for ``--local true`` runs, with the transforms module shipped to its Python workers.

    ``config`` adds Spark settings (e.g. ``spark.driver.memory``), applied before the JVM starts.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName("prepare_dataset")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
    )
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    spark.sparkContext.addPyFile(transforms.__file__)
    return spark


def _run_on_glue(argv: Sequence[str]) -> None:
    # Imported here: the Glue libraries exist only inside Glue.
    from awsglue.context import GlueContext  # type: ignore[import-not-found]
    from awsglue.job import Job  # type: ignore[import-not-found]
    from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    from pyspark.context import SparkContext

    present = [name for name in ARGUMENT_DEFAULTS if f"--{name}" in argv]
    system = [name for name in ("JOB_NAME", "JOB_RUN_ID") if f"--{name}" in argv]
    resolved = getResolvedOptions(list(argv), [*system, *present])
    config = parse_job_arguments(
        {name: resolved[name] for name in present}, local=False, default_run_id=resolved.get("JOB_RUN_ID")
    )
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(resolved.get("JOB_NAME", "prepare_dataset"), resolved)
    report = run(glue_context.spark_session, config)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    job.commit()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: local runs with ``--local true``, Glue runs otherwise. Returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    args = list(sys.argv if argv is None else ["prepare_dataset.py", *argv])
    if not is_local_run(args[1:]):
        # On Glue an exception fails the job run with its message, which is what operators see.
        _run_on_glue(args)
        return 0
    try:
        config = parse_job_arguments(parse_local_argv(args[1:]), local=True)
    except JobArgumentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    spark = build_local_spark_session()
    try:
        report = run(spark, config)
    except DatasetPreparationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
