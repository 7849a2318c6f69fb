"""The curated-data reader rejects every bad record with file and line; batching and metrics behave as documented."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

# conftest.py (through harness_support) puts training_code/ on sys.path, as the containers do.
from nlp_data import (
    DataValidationError,
    EncodedDataset,
    classification_metrics,
    collate,
    find_labels_file,
    length_grouped_batches,
    load_labels,
    read_examples,
    shard_batches,
)

LABELS = ["neg", "pos"]


def write_lines(directory: Path, lines: list[bytes], name: str = "part-00000.jsonl") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def record(**fields: object) -> bytes:
    return json.dumps({"id": "1", "text": "fine", "label": "pos", **fields}).encode()


def test_reads_every_record_across_files_in_name_order_and_skips_blank_lines(tmp_path: Path) -> None:
    write_lines(tmp_path, [record(id="b1"), b"", record(id="b2", label="neg")], "part-b.jsonl")
    with gzip.open(tmp_path / "part-a.json.gz", "wb") as handle:
        handle.write(record(id="a1") + b"\n")
    (tmp_path / "_SUCCESS").write_bytes(b"")
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    examples = read_examples(tmp_path, LABELS, "train")
    assert [(e.id, e.label_id) for e in examples] == [("a1", 1), ("b1", 1), ("b2", 0)]


def test_fails_when_channel_directory_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"channel 'validation' directory .*missing.* does not exist"):
        read_examples(tmp_path / "missing", LABELS, "validation")


def test_fails_when_channel_has_no_data_files(tmp_path: Path) -> None:
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    with pytest.raises(DataValidationError, match="holds no data files"):
        read_examples(tmp_path, LABELS, "train")


def test_fails_when_data_files_hold_no_records(tmp_path: Path) -> None:
    write_lines(tmp_path, [b"", b"  "])
    with pytest.raises(DataValidationError, match="has data files but no records"):
        read_examples(tmp_path, LABELS, "train")


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (b'{"id": "2", "text": "oops"', r"part-00000.jsonl:3: malformed JSON"),
        (b'["not", "an", "object"]', r"part-00000.jsonl:3: expected a JSON object"),
        (b'{"id": "2", "text": "no label"}', r"part-00000.jsonl:3: missing field\(s\) \['label'\]"),
        (record(label="maybe"), r"part-00000.jsonl:3: label 'maybe' is not in labels.json \['neg', 'pos'\]"),
        (record(text="   "), r"part-00000.jsonl:3: 'text' must be a non-empty string"),
        (record(text=7), r"part-00000.jsonl:3: 'text' must be a non-empty string, got 7"),
        (b'{"id": "2", "text": "caf\xe9", "label": "pos"}', r"part-00000.jsonl:3: invalid UTF-8 at byte 24"),
    ],
    ids=["malformed", "not-object", "missing-field", "unknown-label", "blank-text", "non-string-text", "bad-utf8"],
)
def test_rejects_bad_record_naming_file_and_line(tmp_path: Path, bad_line: bytes, expected: str) -> None:
    write_lines(tmp_path, [record(), b"", bad_line, record()])
    with pytest.raises(DataValidationError, match=expected):
        read_examples(tmp_path, LABELS, "train")


def test_labels_file_must_list_distinct_strings(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(["a", "b", "a"]))
    with pytest.raises(DataValidationError, match=r"these repeat: \['a'\]"):
        load_labels(path)
    path.write_text(json.dumps([]))
    with pytest.raises(DataValidationError, match="non-empty JSON list"):
        load_labels(path)
    path.write_text(json.dumps({"labels": ["x", "y"]}))
    assert load_labels(path) == ["x", "y"]


def test_missing_labels_file_names_every_place_searched(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"no labels.json in .*train.*labels.*--labels_file"):
        find_labels_file(tmp_path / "train", None, tmp_path / "labels")


def test_length_grouped_batches_cover_each_example_once_and_depend_only_on_seed_and_epoch() -> None:
    lengths = [(i * 37) % 50 + 1 for i in range(203)]
    first = length_grouped_batches(lengths, batch_size=8, seed=3, epoch=0, mega_batch_factor=4)
    assert sorted(i for batch in first for i in batch) == list(range(203))
    assert first == length_grouped_batches(lengths, batch_size=8, seed=3, epoch=0, mega_batch_factor=4)
    assert first != length_grouped_batches(lengths, batch_size=8, seed=3, epoch=1, mega_batch_factor=4)


def test_length_grouping_pads_far_less_than_random_batches() -> None:
    lengths = [(i * 37) % 120 + 5 for i in range(512)]

    def padding(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    grouped = length_grouped_batches(lengths, batch_size=16, seed=0, epoch=0)
    unsorted = [list(range(i, min(i + 16, 512))) for i in range(0, 512, 16)]
    assert padding(grouped) * 5 < padding(unsorted)


def test_shards_give_every_rank_the_same_number_of_batches() -> None:
    batches = [[i] for i in range(7)]
    shards = [shard_batches(batches, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert {b[0] for s in shards for b in s} == set(range(7))


def test_collate_pads_to_multiple_of_eight_and_counts_real_tokens() -> None:
    dataset = EncodedDataset(input_ids=[[5, 6, 7], [5] * 10], labels=[0, 1])
    batch = collate(dataset, [0, 1], pad_token_id=0)
    assert batch["input_ids"].shape == (2, 16)
    assert batch["attention_mask"].sum().item() == 13 == batch["num_tokens"]
    assert batch["input_ids"][0, 3:].eq(0).all()
    assert batch["labels"].tolist() == [0, 1]


def test_metrics_match_hand_computed_values() -> None:
    metrics = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 1], ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert metrics["per_label"]["b"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2})
    # f1: a = 2/3, b = 2/3, c = 0 (present, never predicted)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
