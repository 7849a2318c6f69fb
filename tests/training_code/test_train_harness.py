"""train.py run through the real SageMaker training toolkit (`train` entry point) against a temporary /opt/ml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training_code.harness_support import (
    TINY_HYPERPARAMETERS,
    CuratedData,
    HarnessRun,
    run_training_toolkit,
    write_split,
)

pytestmark = pytest.mark.slow


def test_toolkit_reports_success_and_writes_servable_model_directory(harness_training: HarnessRun) -> None:
    model_dir = harness_training.model_dir
    assert (harness_training.output_dir / "success").is_file()
    assert not (harness_training.output_dir / "failure").exists()
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "tokenizer.json").is_file()
    assert json.loads((model_dir / "labels.json").read_text()) == ["sports", "weather", "food"]
    assert (model_dir / "code" / "inference.py").read_text() == (
        Path(__file__).resolve().parents[2] / "training_code" / "inference.py"
    ).read_text()
    config = json.loads((model_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "sports", "1": "weather", "2": "food"}


def test_metrics_hold_train_validation_and_throughput(harness_training: HarnessRun) -> None:
    metrics = json.loads((harness_training.output_dir / "data" / "metrics.json").read_text())
    assert metrics["train"]["steps"] == TINY_HYPERPARAMETERS["max_steps"]
    assert metrics["train"]["samples_per_s"] > 0
    assert metrics["train"]["tokens_per_s"] > metrics["train"]["samples_per_s"]
    assert metrics["precision"] == "float32"
    # Three balanced classes: chance is 1/3; the topic words make the task easy for even a tiny model.
    assert metrics["validation"]["accuracy"] > 0.8
    assert metrics["validation"]["num_examples"] == 60
    assert metrics["test"]["confusion_matrix"]["labels"] == ["sports", "weather", "food"]


def test_progress_lines_show_step_loss_lr_throughput_and_eta(harness_training: HarnessRun) -> None:
    progress = [line for line in harness_training.log.splitlines() if "step 20/100" in line]
    assert progress, harness_training.log[-3000:]
    for part in ("loss", "lr", "samples/s", "tokens/s", "eta"):
        assert part in progress[0]


def test_toolkit_reports_failure_naming_file_line_and_bad_label(
    tmp_path: Path, curated_data: CuratedData, tiny_pretrained: Path
) -> None:
    bad_train = tmp_path / "bad-train"
    write_split(
        bad_train, [{"id": "1", "text": "nice goal", "label": "sports"}, {"id": "2", "text": "x", "label": "?"}]
    )
    (bad_train / "labels.json").write_text(json.dumps(["sports", "weather", "food"]))
    run = run_training_toolkit(
        tmp_path / "opt-ml",
        {"train": bad_train, "validation": curated_data.validation, "pretrained": tiny_pretrained},
        {**TINY_HYPERPARAMETERS, "checkpoint_dir": str(tmp_path / "checkpoints")},
    )
    assert run.returncode != 0
    assert not (run.output_dir / "success").exists()
    failure = (run.output_dir / "failure").read_text()
    assert "part-00000.jsonl:2" in failure
    assert "label '?' is not in labels.json" in failure
    assert not (run.model_dir / "config.json").exists()
