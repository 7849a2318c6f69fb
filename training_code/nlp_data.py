"""Curated text-classification data: strict reading, length-grouped batching, dynamic padding and metrics.

Shared by ``train.py`` and ``evaluate.py``. The curated contract (see ARCHITECTURE.md) is JSON Lines with one
``{"id", "text", "label"}`` object per line plus a ``labels.json`` that lists the label set in order. Every record
is either used or rejected with an error that names the file and line: nothing is dropped silently.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

LABELS_FILE_NAME = "labels.json"
# Spark writes part files as *.json; people write *.jsonl. Gzip is what Spark's compression option produces.
DATA_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
# Files that sit beside the data in the curated layout but are not records.
NON_DATA_FILE_NAMES = frozenset({LABELS_FILE_NAME, "data_report.json"})
REQUIRED_FIELDS = ("id", "text", "label")


class DataValidationError(ValueError):
    """The input data breaks the curated-data contract; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Example:
    """One validated record."""

    id: str
    text: str
    label_id: int


def load_labels(path: str | os.PathLike[str]) -> list[str]:
    """Read ``labels.json`` (a JSON list of distinct label strings, or ``{"labels": [...]}``)."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(
            f"labels file {path} does not exist: the curated data must include a {LABELS_FILE_NAME} listing the labels"
        )
    try:
        content = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataValidationError(
            f'{path}: not valid UTF-8 JSON ({error}); expected a list such as ["neg", "pos"]'
        ) from None
    if isinstance(content, dict):
        content = content.get("labels")
    if not isinstance(content, list) or not content or not all(isinstance(item, str) and item for item in content):
        raise DataValidationError(f"{path}: expected a non-empty JSON list of label strings, got {content!r}")
    duplicates = sorted({label for label in content if content.count(label) > 1})
    if duplicates:
        raise DataValidationError(f"{path}: labels must be distinct, these repeat: {duplicates}")
    return list(content)


def find_labels_file(*directories: str | os.PathLike[str] | None) -> Path:
    """Return the first ``labels.json`` found in ``directories`` (skipping None), or raise naming where it looked."""
    searched = [Path(directory) for directory in directories if directory]
    for directory in searched:
        candidate = directory / LABELS_FILE_NAME
        if candidate.is_file():
            return candidate
    raise DataValidationError(
        f"no {LABELS_FILE_NAME} in {[str(d) for d in searched]}: put it in the train channel, "
        "give a 'labels' channel, or pass --labels_file"
    )


def list_data_files(directory: str | os.PathLike[str], channel: str) -> list[Path]:
    """List the JSON Lines files of a channel in a stable order, or raise if the channel is missing or empty."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataValidationError(
            f"channel '{channel}' directory {directory} does not exist: give the job a '{channel}' input channel "
            f"(locally: set SM_CHANNEL_{channel.upper()} or --{channel}_dir)"
        )
    files = sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and path.name.endswith(DATA_SUFFIXES)
        and path.name not in NON_DATA_FILE_NAMES
        and not path.name.startswith(("_", "."))
    )
    if not files:
        raise DataValidationError(
            f"channel '{channel}' directory {directory} holds no data files ({', '.join(DATA_SUFFIXES)}): "
            "point the channel at the curated split"
        )
    return files


def _open_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        yield from handle


def _parse_record(raw: bytes, where: str, label_ids: dict[str, int]) -> Example:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataValidationError(
            f"{where}: invalid UTF-8 at byte {error.start} ({raw[error.start : error.start + 4]!r}); "
            "re-encode the file as UTF-8"
        ) from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataValidationError(f"{where}: malformed JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise DataValidationError(f"{where}: expected a JSON object with {list(REQUIRED_FIELDS)}, got {line.strip()!r}")
    missing = [field for field in REQUIRED_FIELDS if field not in record]
    if missing:
        raise DataValidationError(f"{where}: missing field(s) {missing}; every record needs {list(REQUIRED_FIELDS)}")
    text, label = record["text"], record["label"]
    if not isinstance(text, str) or not text.strip():
        raise DataValidationError(f"{where}: 'text' must be a non-empty string, got {text!r}")
    if not isinstance(label, str) or label not in label_ids:
        raise DataValidationError(
            f"{where}: label {label!r} is not in {LABELS_FILE_NAME} {sorted(label_ids)}; "
            "fix the record or add the label to labels.json"
        )
    return Example(id=str(record["id"]), text=text, label_id=label_ids[label])


def read_examples(directory: str | os.PathLike[str], labels: Sequence[str], channel: str) -> list[Example]:
    """Read and validate every record of a channel; raise DataValidationError on the first bad one."""
    label_ids = {label: index for index, label in enumerate(labels)}
    examples: list[Example] = []
    for path in list_data_files(directory, channel):
        for line_number, raw in enumerate(_open_lines(path), start=1):
            if not raw.strip():
                # A trailing newline or a blank separator line carries no record.
                continue
            examples.append(_parse_record(raw, f"{path}:{line_number}", label_ids))
    if not examples:
        raise DataValidationError(f"channel '{channel}' directory {directory} has data files but no records")
    return examples


@dataclass(frozen=True)
class EncodedDataset:
    """Token ids per example (truncated, unpadded) and their labels."""

    input_ids: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> list[int]:
        """Token count per example, used to group similar lengths into one batch."""
        return [len(ids) for ids in self.input_ids]


def encode_examples(tokenizer: Any, examples: Sequence[Example], max_seq_length: int) -> EncodedDataset:
    """Tokenize once up front (the fast tokenizer batches in Rust), truncating to ``max_seq_length``."""
    encoded = tokenizer(
        [example.text for example in examples],
        truncation=True,
        max_length=max_seq_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return EncodedDataset(input_ids=list(encoded["input_ids"]), labels=[example.label_id for example in examples])


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, mega_batch_factor: int = 50
) -> list[list[int]]:
    """Shuffle, then sort by length inside windows of ``mega_batch_factor`` batches, then shuffle the batches.

    Batches of similar lengths waste little compute on padding while the order stays random. The result depends only
    on (seed, epoch), so a resumed run replays exactly the same batches.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * mega_batch_factor
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda index: lengths[index], reverse=True)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    permutation = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in permutation]


def shard_batches(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """Give each rank every world_size-th batch, wrapping around so all ranks run the same number of steps."""
    if world_size == 1:
        return batches
    per_rank = math.ceil(len(batches) / world_size)
    padded = [batches[i % len(batches)] for i in range(per_rank * world_size)]
    return padded[rank::world_size]


def collate(dataset: EncodedDataset, indices: Sequence[int], pad_token_id: int, multiple_of: int = 8) -> dict[str, Any]:
    """Pad one batch to its longest member rounded up to ``multiple_of`` (tensor cores like multiples of 8)."""
    longest = max(len(dataset.input_ids[i]) for i in indices)
    width = math.ceil(longest / multiple_of) * multiple_of
    input_ids = torch.full((len(indices), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(indices), width), dtype=torch.long)
    real_tokens = 0
    for row, index in enumerate(indices):
        ids = dataset.input_ids[index]
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
        real_tokens += len(ids)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": torch.tensor([dataset.labels[i] for i in indices], dtype=torch.long),
        # Counted here, on the host, so logging throughput never forces a device sync.
        "num_tokens": real_tokens,
    }


@torch.inference_mode()
def predict_dataset(
    model: torch.nn.Module,
    dataset: EncodedDataset,
    pad_token_id: int,
    device: torch.device,
    batch_size: int = 64,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[list[int], float]:
    """Predict every example (batched by length) and return (predicted label ids in input order, mean loss)."""
    model.eval()
    order = sorted(range(len(dataset)), key=lambda i: len(dataset.input_ids[i]))
    predictions = [0] * len(dataset)
    loss_sum = 0.0
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = collate(dataset, indices, pad_token_id)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits = model(
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            ).logits.float()
        labels = batch["labels"].to(device)
        loss_sum += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        for index, predicted in zip(indices, logits.argmax(dim=-1).tolist(), strict=True):
            predictions[index] = predicted
    return predictions, loss_sum / max(len(dataset), 1)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro F1, per-label precision/recall/F1/support and the confusion matrix (rows = true label)."""
    size = len(labels)
    matrix = [[0] * size for _ in range(size)]
    for truth, predicted in zip(y_true, y_pred, strict=True):
        matrix[truth][predicted] += 1
    per_label: dict[str, dict[str, float | int]] = {}
    f1_scores = []
    for index, label in enumerate(labels):
        true_positive = matrix[index][index]
        predicted_count = sum(matrix[row][index] for row in range(size))
        support = sum(matrix[index])
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support or predicted_count:
            # As scikit-learn does: a label neither present nor predicted says nothing about the model.
            f1_scores.append(f1)
    total = len(y_true)
    return {
        "accuracy": sum(matrix[i][i] for i in range(size)) / total if total else 0.0,
        "macro_f1": sum(f1_scores) / len(f1_scores) if f1_scores else 0.0,
        "num_examples": total,
        "per_label": per_label,
        "confusion_matrix": {"labels": list(labels), "matrix": matrix},
    }
