"""Shared fixtures for the training-code tests: a tiny BERT and tokenizer, curated data, one harness training run.

The expensive things (building the tiny model, running train.py through the SageMaker training toolkit) happen once
per session; the evaluate, inference and serving tests reuse the trained model directory.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import ModuleType

import pytest

from tests.training_code.harness_support import (
    LABELS,
    TINY_HYPERPARAMETERS,
    TRAINING_CODE,
    CuratedData,
    HarnessRun,
    load_module,
    make_records,
    make_text,
    run_training_toolkit,
    write_split,
)


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
    """A randomly initialised two-layer BERT and a WordPiece tokenizer trained here, saved like a hub checkpoint."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    rng = random.Random(0)
    corpus = [make_text(rng, LABELS[i % 3]) for i in range(600)]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=200, special_tokens=special))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = BertTokenizerFast(tokenizer_object=tokenizer, model_max_length=64)
    fast.save_pretrained(directory)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
        num_labels=len(LABELS),
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    return directory


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
