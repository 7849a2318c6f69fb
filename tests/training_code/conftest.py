"""Shared fixtures for the training-code tests: a tiny BERT and tokenizer, curated data, one harness training run.

The expensive things (building the tiny model, running train.py through the SageMaker training toolkit) happen once
per session; the evaluate, inference and serving tests reuse the trained model directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.training_code.harness_support import (
    LABELS,
    TINY_HYPERPARAMETERS,
    TRAINING_CODE,
    CuratedData,
    HarnessRun,
    build_tiny_pretrained,
    load_module,
    make_records,
    run_training_toolkit,
    write_split,
)

# The session's one multi-model-server; the serving tests and the classify end-to-end test share it.
from tests.training_code.model_server import server  # noqa: F401


@pytest.fixture(scope="session")
def curated_data(tmp_path_factory: pytest.TempPathFactory) -> CuratedData:
    """train/validation/test JSON Lines plus labels.json at the root, as the Glue job writes them.

    labels.json is also copied into a folder of its own, the 'labels' channel the pipeline gives the training job.
    """
    root = tmp_path_factory.mktemp("curated")
    splits = {"train": make_records(1, 240), "validation": make_records(2, 60), "test": make_records(3, 60)}
    for name, records in splits.items():
        write_split(root / name, records)
    for where in (root, root / "labels-channel"):
        where.mkdir(exist_ok=True)
        (where / "labels.json").write_text(json.dumps(LABELS), encoding="utf-8")
    return CuratedData(
        root=root,
        train=root / "train",
        validation=root / "validation",
        test=root / "test",
        labels=root / "labels-channel",
    )


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised two-layer BERT and a WordPiece tokenizer, saved like a hub checkpoint."""
    return build_tiny_pretrained(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def harness_training(
    tmp_path_factory: pytest.TempPathFactory, curated_data: CuratedData, tiny_pretrained: Path
) -> HarnessRun:
    """The tiny BERT trained once through the real toolkit; later tests evaluate and serve its model directory."""
    base = tmp_path_factory.mktemp("opt-ml")
    channels = {
        "train": curated_data.train,
        "validation": curated_data.validation,
        "test": curated_data.test,
        "labels": curated_data.labels,
        "pretrained": tiny_pretrained,
    }
    hyperparameters = {**TINY_HYPERPARAMETERS, "checkpoint_dir": str(base / "checkpoints"), "bf16": "auto"}
    run = run_training_toolkit(base, channels, hyperparameters)
    assert run.returncode == 0, run.log[-4000:]
    return run


@pytest.fixture(scope="session")
def inference_module() -> ModuleType:
    """training_code/inference.py imported under a distinctive name."""
    return load_module("training_code_inference", TRAINING_CODE / "inference.py")


@pytest.fixture(scope="session")
def evaluate_module() -> ModuleType:
    """training_code/evaluate.py imported under a distinctive name."""
    return load_module("training_code_evaluate", TRAINING_CODE / "evaluate.py")
