"""The real job, run in local mode on real text (chatterbot-corpus) and on messy synthetic inputs."""

from __future__ import annotations

import base64
import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import chatterbot_corpus
import prepare_dataset
import pytest
import yaml
from dataset_transforms import QUARANTINE_REASONS, SPLITS, normalise_text
from pyspark.sql import SparkSession

CORPUS_DIR = Path(chatterbot_corpus.__file__).parent / "data" / "english"


def _corpus_utterances() -> list[tuple[str, str]]:
    """(utterance, topic) for every utterance of the English corpus; the topic is the file name."""
    utterances = []
    for path in sorted(CORPUS_DIR.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for conversation in document.get("conversations", []):
            utterances.extend((str(utterance), path.stem) for utterance in conversation)
    return utterances


def _assert_accounted(report: dict[str, Any]) -> None:
    assert report["records_in"] == report["records_written"] + report["duplicates"] + report["quarantined"]
    assert report["records_written"] == sum(report["written_per_split"].values())
    assert report["quarantined"] == sum(report["quarantined_per_reason"].values())
    assert set(report["quarantined_per_reason"]) == set(QUARANTINE_REASONS)


@pytest.fixture(scope="module")
def corpus_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The corpus as raw files: CSV (quoted fields) and JSON Lines (one gzipped, in a subfolder), three files each."""
    utterances = _corpus_utterances()
    root = tmp_path_factory.mktemp("corpus")
    csv_dir, jsonl_dir = root / "csv", root / "jsonl"
    csv_dir.mkdir()
    (jsonl_dir / "nested").mkdir(parents=True)
    for part in range(3):
        chunk = utterances[part::3]
        with (csv_dir / f"part{part}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["topic", "utterance"])
            writer.writerows((topic, text) for text, topic in chunk)
        lines = "".join(
            json.dumps({"utterance": text, "topic": topic}, ensure_ascii=False) + "\n" for text, topic in chunk
        )
        if part == 2:  # a gzip file in a subfolder: read too
            (jsonl_dir / "nested" / "part2.jsonl.gz").write_bytes(gzip.compress(lines.encode("utf-8")))
        else:
            (jsonl_dir / f"part{part}.jsonl").write_text(lines, encoding="utf-8")
    return {"csv": csv_dir, "jsonl": jsonl_dir}


@pytest.fixture(scope="module")
def corpus_runs(
    run_job: Any, corpus_inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Two runs into one output prefix: the corpus as CSV, then the same corpus as JSON Lines (published last)."""
    fields = {"text_field": "utterance", "label_field": "topic", "max_chars": "2000"}
    output = tmp_path_factory.mktemp("corpus-out")
    return {
        "output": output,
        "csv": run_job(corpus_inputs["csv"], output, input_format="csv", run_id="from-csv", **fields),
        "jsonl": run_job(corpus_inputs["jsonl"], output, input_format="jsonl", run_id="from-jsonl", **fields),
    }


def test_corpus_every_utterance_is_accounted_for(corpus_runs: dict[str, Any], published: Any) -> None:
    utterances = _corpus_utterances()
    for key in ("csv", "jsonl"):
        report = corpus_runs[key]
        _assert_accounted(report)
        assert report["records_in"] == len(utterances)
    on_disk = published(corpus_runs["output"])
    assert on_disk["report"] == corpus_runs["jsonl"]
    assert {split: len(records) for split, records in on_disk["splits"].items()} == on_disk["report"][
        "written_per_split"
    ]
    assert len(on_disk["quarantine"]) == on_disk["report"]["quarantined"]


def test_corpus_duplicates_are_counted_and_cross_topic_texts_quarantined(
    corpus_runs: dict[str, Any], published: Any
) -> None:
    report = corpus_runs["jsonl"]
    utterances = [(normalise_text(text), topic) for text, topic in _corpus_utterances()]
    topics_per_text: dict[str, set[str]] = {}
    for text, topic in utterances:
        if text is not None:
            topics_per_text.setdefault(text, set()).add(topic)
    conflicting = {text for text, topics in topics_per_text.items() if len(topics) > 1}
    assert conflicting, "the corpus has utterances under several topics"
    empty = sum(1 for text, _ in utterances if text is None)
    assert {reason: n for reason, n in report["quarantined_per_reason"].items() if n} == {
        "missing_text": empty,
        "conflicting_labels": sum(1 for text, _ in utterances if text in conflicting),
    }
    assert report["records_written"] == len(topics_per_text) - len(conflicting)
    assert report["duplicates"] > 0
    quarantine = published(corpus_runs["output"])["quarantine"]
    conflicting_originals = {
        json.loads(r["original"])["utterance"] for r in quarantine if r["reason"] == "conflicting_labels"
    }
    assert {normalise_text(text) for text in conflicting_originals} == conflicting


def test_corpus_labels_are_the_topics_in_order(corpus_runs: dict[str, Any], published: Any) -> None:
    on_disk = published(corpus_runs["output"])
    assert on_disk["labels"] == sorted({topic for _, topic in _corpus_utterances()})
    assert on_disk["labels"] == corpus_runs["csv"]["labels"] == list(corpus_runs["csv"]["written_per_label"])
    records = [record for split in SPLITS for record in on_disk["splits"][split]]
    assert all(set(record) == {"id", "text", "label"} for record in records)
    assert {record["label"] for record in records} == set(on_disk["labels"])


def test_corpus_no_text_appears_in_two_splits(corpus_runs: dict[str, Any]) -> None:
    for run in ("from-csv", "from-jsonl"):
        records = _records_by_split(corpus_runs["output"] / "runs" / run)
        texts = {split: {text for _, text, _ in records[split]} for split in SPLITS}
        assert not texts["train"] & texts["validation"]
        assert not texts["train"] & texts["test"]
        assert not texts["validation"] & texts["test"]


def test_corpus_splits_are_stratified_by_topic(corpus_runs: dict[str, Any]) -> None:
    for label, per_split in corpus_runs["jsonl"]["written_per_label"].items():
        total = sum(per_split.values())
        if total >= 10:
            for split, ratio in zip(SPLITS, (0.8, 0.1, 0.1), strict=True):
                assert abs(per_split[split] - ratio * total) <= 1, (label, per_split)


def test_corpus_splits_are_identical_across_two_runs(corpus_runs: dict[str, Any]) -> None:
    output = corpus_runs["output"]
    first = _records_by_split(output / "runs" / "from-csv")
    second = _records_by_split(output / "runs" / "from-jsonl")
    assert first == second
    pointer = json.loads((output / "_LATEST").read_text(encoding="utf-8"))
    assert pointer["run_id"] == "from-jsonl"
    assert pointer["run_prefix"] == f"{output}/runs/from-jsonl/"
    assert pointer["data_report"] == f"{output}/runs/from-jsonl/data_report.json"
    assert pointer["labels"] == f"{output}/runs/from-jsonl/labels.json"
    assert _records_by_split(Path(pointer["run_prefix"])) == second
    # Publishing is the pointer alone: no copy of the run that a reader could catch half-written.
    assert not (output / "latest").exists()
    assert {p.name for p in output.iterdir() if not p.name.endswith(".crc")} == {"_LATEST", "runs"}


def _records_by_split(prefix: Path) -> dict[str, set[tuple[str, str, str]]]:
    records: dict[str, set[tuple[str, str, str]]] = {}
    for split in SPLITS:
        records[split] = set()
        for part in (prefix / split).glob("*.json"):
            for line in part.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                records[split].add((record["id"], record["text"], record["label"]))
    return records


# --- messy inputs ----------------------------------------------------------------------------------------------------

MESSY_CSV = b"".join(
    [
        b"text,label\r\n",
        b'"Hello,\nhow are you?",greeting\r\n',  # quoted comma and newline: valid
        b"caf\xe9 au lait,food\r\n",  # Latin-1 byte in a UTF-8 file: undecodable
        b",food\r\n",  # empty text field
        b"Some text without a label,\r\n",  # empty label field
        b"\r\n",  # blank line: not a record
        b"   \t ,greeting\r\n",  # whitespace-only text
        b"It will rain tomorrow,weather\r\n",  # label outside --labels
        b"Same words,greeting\r\n",
        b"Same   words,food\r\n",  # same normalised text, other label: both quarantined
        b"Pasta again,food\r\n",
        b'"Pasta  again",food\r\n',  # duplicate after normalisation
        b"Pasta again , food \r\n",  # duplicate: trailing space trimmed from text and label
        b"too,many,fields\r\n",  # malformed
        b"x" * 600 + b",food\r\n",  # longer than --max_chars
        b"ok,short\r\n",  # shorter than --min_chars and unknown label: the first rule wins
        b'"na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 ""quoted""",food\r\n',  # valid UTF-8 and doubled quotes
        b"Good morning,greeting",  # no newline at the end of the file
    ]
)


@pytest.fixture(scope="module")
def messy_csv_run(run_job: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    source = tmp_path_factory.mktemp("messy-csv")
    (source / "messy.csv").write_bytes(MESSY_CSV)
    (source / "header_only.csv").write_bytes(b"text,label\n")
    (source / "_ignored_marker").write_bytes(b"not data")
    output = tmp_path_factory.mktemp("messy-csv-out")
    report = run_job(
        source, output, input_format="csv", labels="greeting,food", min_chars="3", max_chars="500", seed="7"
    )
    return output, report


def test_messy_csv_counts_every_record_by_reason(messy_csv_run: tuple[Path, dict[str, Any]]) -> None:
    _, report = messy_csv_run
    _assert_accounted(report)
    assert report["records_in"] == 16
    assert report["records_written"] == 4
    assert report["duplicates"] == 2
    assert {reason: n for reason, n in report["quarantined_per_reason"].items() if n} == {
        "undecodable_bytes": 1,
        "malformed_record": 1,
        "missing_text": 2,
        "missing_label": 1,
        "text_too_short": 1,
        "text_too_long": 1,
        "label_not_allowed": 1,
        "conflicting_labels": 2,
    }
    assert report["labels"] == ["greeting", "food"]


def test_messy_csv_keeps_quoted_newlines_and_normalises_text(
    messy_csv_run: tuple[Path, dict[str, Any]], published: Any
) -> None:
    output, _ = messy_csv_run
    written = {
        record["text"]: record["label"] for records in published(output)["splits"].values() for record in records
    }
    assert written == {
        "Hello, how are you?": "greeting",
        "Pasta again": "food",
        'naïve café — "quoted"': "food",
        "Good morning": "greeting",
    }


def test_messy_csv_quarantine_keeps_original_content(
    messy_csv_run: tuple[Path, dict[str, Any]], published: Any
) -> None:
    output, _ = messy_csv_run
    quarantine = published(output)["quarantine"]
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for record in quarantine:
        by_reason.setdefault(record["reason"], []).append(record)
        assert record["detail"]
        assert record["source_file"].endswith("messy.csv")
        assert ("original" in record) != ("original_base64" in record)
    assert base64.b64decode(by_reason["undecodable_bytes"][0]["original_base64"]) == b"caf\xe9 au lait,food"
    assert by_reason["malformed_record"][0]["original"] == "too,many,fields"
    assert by_reason["text_too_long"][0]["original"] == "x" * 600 + ",food"
    assert by_reason["label_not_allowed"][0]["original"] == "It will rain tomorrow,weather"
    assert sorted(r["original"] for r in by_reason["conflicting_labels"]) == [
        "Same   words,food",
        "Same words,greeting",
    ]


MESSY_JSONL = (
    b'{"text": "Hello there", "label": "greeting"}\n'
    b'{"text": "bad \xff byte", "label": "greeting"}\n'  # invalid UTF-8
    b"\n"  # blank line
    b'{"text": "no label here"}\n'
    b'{"label": "greeting"}\n'
    b'{"text": 42, "label": "greeting"}\n'
    b'{"text": "numbers as labels", "label": 7}\n'  # integer label, not in --labels
    b"not json at all\n"
    b'{"text": "Hello\\u0000 there", "label": "greeting"}\n'  # duplicate once the control character goes
    b'{"text": "Bye", "label": "farewell", "extra": [1, 2]}\r\n'
    b'\xef\xbb\xbf{"text": "cafe\xcc\x81", "label": "food"}\n'  # byte-order mark; decomposed accent (NFC)
)


def test_messy_jsonl_counts_every_record_by_reason(run_job: Any, published: Any, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "messy.jsonl").write_bytes(MESSY_JSONL)
    output = tmp_path / "out"
    report = run_job(source, output, labels='["greeting", "farewell", "food"]', seed="1")
    _assert_accounted(report)
    assert report["records_in"] == 11
    assert report["duplicates"] == 1
    assert {reason: n for reason, n in report["quarantined_per_reason"].items() if n} == {
        "undecodable_bytes": 1,
        "blank_line": 1,
        "malformed_record": 1,
        "invalid_field_type": 1,
        "missing_text": 1,
        "missing_label": 1,
        "label_not_allowed": 1,
    }
    written = {r["text"]: r["label"] for records in published(output)["splits"].values() for r in records}
    assert written == {"Hello there": "greeting", "Bye": "farewell", "café": "food"}


def test_declared_single_byte_encoding_is_decoded(run_job: Any, published: Any, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "cp1252.csv").write_bytes("text,label\n“Crème brûlée”,food\nÇa va,greeting\n".encode("cp1252"))
    report = run_job(source, tmp_path / "out", input_format="csv", encoding="cp1252")
    assert report["quarantined"] == 0
    written = {r["text"] for records in published(tmp_path / "out")["splits"].values() for r in records}
    assert written == {"“Crème brûlée”", "Ça va"}


def test_ids_from_the_data_are_kept_and_clashes_quarantined(run_job: Any, published: Any, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    lines = [
        {"id": "a-1", "text": "first", "label": "x"},
        {"id": "a-1", "text": "second", "label": "x"},
        {"id": 17, "text": "third", "label": "y"},
        {"text": "no id", "label": "y"},
    ]
    (source / "ids.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report = run_job(source, tmp_path / "out", id_field="id")
    _assert_accounted(report)
    assert report["quarantined_per_reason"]["duplicate_id"] == 2
    assert report["quarantined_per_reason"]["missing_id"] == 1
    written = [r for records in published(tmp_path / "out")["splits"].values() for r in records]
    assert written == [{"id": "17", "text": "third", "label": "y"}]


def test_csv_columns_are_mapped_by_name_in_each_file(run_job: Any, published: Any, tmp_path: Path) -> None:
    """Files with the columns in different orders are each read by their own header, never by the first file's."""
    source = tmp_path / "in"
    (source / "nested").mkdir(parents=True)
    (source / "a.csv").write_bytes(b"text,label\nhello there,greeting\nbye now,farewell\n")
    # gzip: the header is read from the decompressed bytes, as Spark reads the records.
    (source / "nested" / "b.csv.gz").write_bytes(
        gzip.compress(b"label,text\ngreeting,good morning\nfarewell,see you\n")
    )
    (source / "c.csv").write_bytes(b'id,label,extra,text\n1,food,x,"pasta, again"\n')
    report = run_job(source, tmp_path / "out", input_format="csv")
    _assert_accounted(report)
    assert report["quarantined"] == 0
    written = {r["text"]: r["label"] for records in published(tmp_path / "out")["splits"].values() for r in records}
    assert written == {
        "hello there": "greeting",
        "bye now": "farewell",
        "good morning": "greeting",
        "see you": "farewell",
        "pasta, again": "food",
    }


def test_csv_file_whose_header_lacks_a_field_is_quarantined_whole(run_job: Any, published: Any, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "good.csv").write_bytes(b"label,text\ngreeting,hello there\n")
    bad_rows = b"body,label\nnot the text column,greeting\ncaf\xe9,food\n"
    (source / "bad.csv").write_bytes(bad_rows)
    report = run_job(source, tmp_path / "out", input_format="csv")
    _assert_accounted(report)
    assert report["records_in"] == 3
    assert {reason: n for reason, n in report["quarantined_per_reason"].items() if n} == {"missing_column": 2}
    quarantine = published(tmp_path / "out")["quarantine"]
    assert len(quarantine) == 2
    for record in quarantine:
        assert record["reason"] == "missing_column"
        assert record["source_file"].endswith("bad.csv")
        assert "bad.csv" in record["detail"] and "['body', 'label']" in record["detail"]
        assert "--text_field='text'" in record["detail"]
    # Original bytes are kept: as text where they decode, as base64 where they do not.
    assert sorted(r.get("original", "") for r in quarantine) == ["", "not the text column,greeting"]
    (undecodable,) = [r for r in quarantine if "original_base64" in r]
    assert base64.b64decode(undecodable["original_base64"]) == b"caf\xe9,food"
    written = [r for records in published(tmp_path / "out")["splits"].values() for r in records]
    assert [(r["text"], r["label"]) for r in written] == [("hello there", "greeting")]


# --- failures: clear errors, nothing published -----------------------------------------------------------------------


def test_fails_on_an_empty_prefix_and_writes_nothing(run_job: Any, tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.mkdir()
    (source / "zero_bytes.csv").write_bytes(b"")
    with pytest.raises(prepare_dataset.DatasetPreparationError, match="holds no data files"):
        run_job(source, tmp_path / "out", input_format="csv")
    assert not (tmp_path / "out").exists()


def test_fails_on_a_missing_prefix(run_job: Any, tmp_path: Path) -> None:
    with pytest.raises(prepare_dataset.DatasetPreparationError, match="does not exist"):
        run_job(tmp_path / "nowhere", tmp_path / "out")


def test_fails_on_header_only_input_and_publishes_nothing(run_job: Any, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "header_only.csv").write_bytes(b"text,label\n")
    with pytest.raises(prepare_dataset.DatasetPreparationError, match=r"no valid record remains.*: 0 records in"):
        run_job(source, tmp_path / "out", input_format="csv")
    assert not (tmp_path / "out").exists()


def test_fails_when_the_text_column_is_not_in_the_csv_header(run_job: Any, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "a.csv").write_bytes(b"body,label\nhello,greeting\n")
    with pytest.raises(prepare_dataset.DatasetPreparationError, match=r"--text_field='text'.*\['body', 'label'\]"):
        run_job(source, tmp_path / "out", input_format="csv")


def test_failed_run_leaves_the_published_dataset_untouched(run_job: Any, tmp_path: Path) -> None:
    good, bad, output = tmp_path / "good", tmp_path / "bad", tmp_path / "out"
    good.mkdir()
    bad.mkdir()
    (good / "a.jsonl").write_text('{"text": "hello", "label": "greeting"}\n', encoding="utf-8")
    (bad / "a.jsonl").write_text('{"body": "hello", "label": "greeting"}\n', encoding="utf-8")
    run_job(good, output, run_id="good")
    published_before = {p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file()}
    with pytest.raises(prepare_dataset.DatasetPreparationError, match="--text_field='text' is in none of the 1 parsed"):
        run_job(bad, output, run_id="bad")
    assert {p.relative_to(output): p.read_bytes() for p in output.rglob("*") if p.is_file()} == published_before
    with pytest.raises(prepare_dataset.DatasetPreparationError, match="already exists"):
        run_job(good, output, run_id="good")


def test_documented_local_command_runs_the_job(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "raw"
    source.mkdir()
    (source / "a.jsonl").write_text(
        "".join(json.dumps({"text": f"utterance {i}", "label": "ab"[i % 2]}) + "\n" for i in range(20)),
        encoding="utf-8",
    )
    # main() builds and stops its own session; here it gets the shared one, kept alive.
    monkeypatch.setattr(prepare_dataset, "build_local_spark_session", lambda: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)
    argv = ["--local", "true", "--input_uri", str(source), "--output_uri", str(tmp_path / "curated")]
    assert prepare_dataset.main(argv) == 0
    assert '"records_written": 20' in capsys.readouterr().out
    pointer = json.loads((tmp_path / "curated" / "_LATEST").read_text(encoding="utf-8"))
    report = json.loads(Path(pointer["data_report"]).read_text(encoding="utf-8"))
    assert report["records_written"] == 20
    assert report["written_per_split"] == {"train": 16, "validation": 2, "test": 2}


def test_local_command_rejects_bad_arguments_before_starting_spark(tmp_path: Path) -> None:
    script = Path(prepare_dataset.__file__)
    source = tmp_path / "raw"
    command = [sys.executable, str(script), "--local", "true", "--input_uri", str(source)]
    inside = subprocess.run([*command, "--output_uri", str(source / "out")], capture_output=True, text=True, timeout=60)
    assert inside.returncode == 2
    assert "lies inside --input_uri" in inside.stderr
    ratios = subprocess.run(
        [*command, "--output_uri", str(tmp_path / "o"), "--split_ratios", "0.8,0.1,0.2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ratios.returncode == 2
    assert "--split_ratios='0.8,0.1,0.2' must sum to 1" in ratios.stderr


def test_failure_while_writing_removes_the_run_prefix(
    run_job: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "a.jsonl").write_text('{"text": "hello", "label": "greeting"}\n', encoding="utf-8")
    original_write_text = prepare_dataset.HadoopStorage.write_text

    def failing_write_text(self: Any, uri: str, text: str) -> None:
        if uri.endswith("data_report.json"):
            raise OSError("disk full")
        original_write_text(self, uri, text)

    monkeypatch.setattr(prepare_dataset.HadoopStorage, "write_text", failing_write_text)
    with pytest.raises(OSError, match="disk full"):
        run_job(source, tmp_path / "out", run_id="doomed")
    assert not (tmp_path / "out" / "runs" / "doomed").exists()
    assert not (tmp_path / "out" / "_LATEST").exists()


def test_a_write_that_loses_records_fails_the_run_and_publishes_nothing(
    run_job: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The report's counts are checked against the files written, so a lost record cannot be published."""
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    lines = "".join(json.dumps({"text": f"utterance {i}", "label": "ab"[i % 2]}) + "\n" for i in range(30))
    (source / "a.jsonl").write_text(lines, encoding="utf-8")
    run_job(source, output, run_id="good")
    pointer_before = (output / "_LATEST").read_bytes()
    original_split_records = prepare_dataset.transforms.split_records

    def losing_split_records(df: Any, split: str) -> Any:
        records = original_split_records(df, split)
        return records.limit(1) if split == "train" else records

    monkeypatch.setattr(prepare_dataset.transforms, "split_records", losing_split_records)
    with pytest.raises(prepare_dataset.DatasetPreparationError, match=r"counts do not add up.*'train': 1"):
        run_job(source, output, run_id="lossy")
    assert not (output / "runs" / "lossy").exists()
    assert (output / "_LATEST").read_bytes() == pointer_before


def test_publishing_removes_a_latest_copy_left_by_an_earlier_version(run_job: Any, tmp_path: Path) -> None:
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    (source / "a.jsonl").write_text('{"text": "hello", "label": "greeting"}\n', encoding="utf-8")
    (output / "latest" / "train").mkdir(parents=True)
    (output / "latest" / "train" / "part-0.json").write_text('{"id": "old", "text": "stale", "label": "x"}\n')
    run_job(source, output, run_id="new")
    assert not (output / "latest").exists()
    assert json.loads((output / "_LATEST").read_text(encoding="utf-8"))["run_id"] == "new"


def test_glue_entry_point_resolves_only_the_arguments_it_was_given(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Runs main() as Glue would, with stand-ins for the awsglue modules (which exist only inside Glue)."""
    source = tmp_path / "in"
    source.mkdir()
    (source / "a.csv").write_text("label,body\ngreeting,hello there\n", encoding="utf-8")
    calls: dict[str, Any] = {}

    def get_resolved_options(argv: list[str], options: list[str]) -> dict[str, str]:
        # Like Glue's: every requested option must be present in argv.
        calls["options"] = options
        pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
        return {option: pairs[f"--{option}"] for option in options}

    class GlueContext:
        def __init__(self, context: Any) -> None:
            self.spark_session = spark

    class Job:
        def __init__(self, glue_context: GlueContext) -> None:
            calls["job"] = self

        def init(self, name: str, arguments: dict[str, str]) -> None:
            calls["init"] = name

        def commit(self) -> None:
            calls["committed"] = True

    modules = {
        "awsglue": type(sys)("awsglue"),
        "awsglue.utils": type(sys)("awsglue.utils"),
        "awsglue.context": type(sys)("awsglue.context"),
        "awsglue.job": type(sys)("awsglue.job"),
    }
    modules["awsglue.utils"].getResolvedOptions = get_resolved_options  # type: ignore[attr-defined]
    modules["awsglue.context"].GlueContext = GlueContext  # type: ignore[attr-defined]
    modules["awsglue.job"].Job = Job  # type: ignore[attr-defined]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(prepare_dataset, "_normalise_uri", lambda name, value, local: value.rstrip("/"))
    argv = ["script.py", "--JOB_NAME", "prepare", "--JOB_RUN_ID", "jr_abc", "--job-bookmark-option", "disable"]
    argv += ["--input_uri", str(source), "--output_uri", str(tmp_path / "out"), "--input_format", "csv"]
    argv += ["--text_field", "body"]
    monkeypatch.setattr(sys, "argv", argv)
    assert prepare_dataset.main() == 0
    assert sorted(calls["options"]) == [
        "JOB_NAME",
        "JOB_RUN_ID",
        "input_format",
        "input_uri",
        "output_uri",
        "text_field",
    ]
    assert calls["init"] == "prepare"
    assert calls["committed"] is True
    pointer = json.loads((tmp_path / "out" / "_LATEST").read_text(encoding="utf-8"))
    assert pointer["run_id"] == "jr_abc"
