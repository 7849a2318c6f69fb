"""Evaluate a trained classifier on the test split and write ``evaluation.json`` for the pipeline's accuracy gate.

SageMaker Processing runs it as ``python3 evaluate.py`` (with ``nlp_data.py`` beside it); the defaults are the
Processing paths. Locally:

    python evaluate.py --model_dir out/model --test_dir data/test --output_dir out/evaluation

``--model_dir`` may hold the saved model itself or a ``model.tar.gz`` produced by the training job.
Output: ``{"metrics": {"accuracy": {"value": ...}, "macro_f1": {"value": ...}}, "per_label": {...},
"confusion_matrix": {"labels": [...], "matrix": [[...]]}, "num_examples": N}``; rows of the matrix are true labels.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import torch
from nlp_data import (
    DataValidationError,
    classification_metrics,
    encode_examples,
    load_labels,
    predict_dataset,
    read_examples,
)
from transformers import AutoModelForSequenceClassification, AutoTokenizer

logger = logging.getLogger("evaluate")
PROCESSING = "/opt/ml/processing"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the Processing job's arguments."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", default=f"{PROCESSING}/model", help="Model folder or folder with model.tar.gz.")
    parser.add_argument("--test_dir", default=f"{PROCESSING}/test", help="Test split (JSON Lines).")
    parser.add_argument("--output_dir", default=f"{PROCESSING}/evaluation", help="Where evaluation.json goes.")
    parser.add_argument("--labels_file", default="", help="labels.json; default: the one saved with the model.")
    parser.add_argument("--max_seq_length", type=int, default=0, help="Truncation; 0 = the model's own limit.")
    parser.add_argument("--batch_size", type=int, default=64, help="Texts per forward pass.")
    return parser.parse_args(argv)


def unpack_model(model_dir: Path, scratch: Path) -> Path:
    """Return a folder with config.json, extracting model.tar.gz into ``scratch`` when that is what we were given."""
    if (model_dir / "config.json").is_file():
        return model_dir
    archive = model_dir / "model.tar.gz" if model_dir.is_dir() else model_dir
    if not archive.is_file():
        raise DataValidationError(f"{model_dir} has neither config.json nor model.tar.gz: point --model_dir at one")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(scratch, filter="data")
    if not (scratch / "config.json").is_file():
        raise DataValidationError(f"{archive} has no config.json at its top level: was it written by train.py?")
    return scratch


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Predict the test split and return the evaluation report."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as scratch:
        model_path = unpack_model(Path(args.model_dir), Path(scratch))
        labels = load_labels(Path(args.labels_file) if args.labels_file else model_path / "labels.json")
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForSequenceClassification.from_pretrained(model_path).to(device)
    if model.config.num_labels != len(labels):
        raise DataValidationError(f"model has {model.config.num_labels} labels but labels.json lists {len(labels)}")
    max_length = args.max_seq_length or min(tokenizer.model_max_length, model.config.max_position_embeddings)
    dataset = encode_examples(tokenizer, read_examples(args.test_dir, labels, "test"), max_length)
    logger.info("evaluating %d test examples on %s", len(dataset), device)
    autocast = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    predictions, loss = predict_dataset(model, dataset, pad_id, device, args.batch_size, autocast)
    scores = classification_metrics(dataset.labels, predictions, labels)
    return {
        "metrics": {
            "accuracy": {"value": scores["accuracy"]},
            "macro_f1": {"value": scores["macro_f1"]},
            "loss": {"value": loss},
        },
        "num_examples": scores["num_examples"],
        "per_label": scores["per_label"],
        "confusion_matrix": scores["confusion_matrix"],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: evaluate and write evaluation.json; bad inputs exit 1 with the reason."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    args = parse_args(argv)
    try:
        report = evaluate(args)
    except DataValidationError as error:
        logger.error("evaluation failed: %s", error)
        return 1
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "evaluation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    logger.info(
        "accuracy %.4f, macro F1 %.4f -> %s",
        report["metrics"]["accuracy"]["value"],
        report["metrics"]["macro_f1"]["value"],
        output / "evaluation.json",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
