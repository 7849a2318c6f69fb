"""train.py bounds --max_seq_length by the base model's position embeddings instead of crashing mid-training."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import ModuleType

import pytest
from transformers import AutoConfig, AutoTokenizer, BertConfig

from tests.training_code.harness_support import LABELS, TOPIC_WORDS, TRAINING_CODE, load_module, write_split

TINY_POSITIONS = 64


@pytest.fixture(scope="module")
def train_module() -> ModuleType:
    return load_module("training_code_train", TRAINING_CODE / "train.py")


def test_a_length_above_the_models_positions_is_lowered_with_a_warning_naming_flag_value_and_limit(
    train_module: ModuleType, tiny_pretrained: Path
) -> None:
    config, tokenizer = AutoConfig.from_pretrained(tiny_pretrained), AutoTokenizer.from_pretrained(tiny_pretrained)
    assert config.max_position_embeddings == TINY_POSITIONS
    length, warning = train_module.fit_max_seq_length(128, config, tokenizer)
    assert length == TINY_POSITIONS
    assert warning.startswith("--max_seq_length 128 exceeds the base model's limit of 64 tokens (")
    assert "truncating texts to 64 tokens" in warning
    assert train_module.fit_max_seq_length(48, config, tokenizer) == (48, "")
    assert train_module.fit_max_seq_length(TINY_POSITIONS, config, tokenizer) == (TINY_POSITIONS, "")


def test_the_tokenizer_limit_counts_only_when_it_sets_one(train_module: ModuleType, tiny_pretrained: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_pretrained)
    # RoBERTa style: more positions than the tokenizer takes (two are reserved); the tokenizer's bound wins.
    tokenizer.model_max_length = 512
    length, warning = train_module.fit_max_seq_length(1024, BertConfig(max_position_embeddings=514), tokenizer)
    assert (length, "(tokenizer.model_max_length)" in warning) == (512, True)
    # A tokenizer saved without a limit reports transformers' huge sentinel: the positions are the bound.
    tokenizer.model_max_length = int(1e30)
    length, warning = train_module.fit_max_seq_length(1024, BertConfig(max_position_embeddings=514), tokenizer)
    assert (length, "(config.max_position_embeddings)" in warning) == (514, True)


def test_training_with_a_too_long_max_seq_length_truncates_to_the_model_instead_of_crashing(
    train_module: ModuleType, tiny_pretrained: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 100 words, one token each, longer than the tiny model's 64 positions: without the bound the forward pass fails
    # (its position and token type tables have 64 rows).
    long_text = " ".join([*TOPIC_WORDS["sports"], *["goal"] * 92])
    records = [{"id": str(i), "text": long_text, "label": LABELS[i % len(LABELS)]} for i in range(4)]
    write_split(tmp_path / "train", records)
    (tmp_path / "train" / "labels.json").write_text(json.dumps(LABELS), encoding="utf-8")
    flags = {
        "pretrained_dir": tiny_pretrained,
        "train_dir": tmp_path / "train",
        "validation_dir": "",
        "test_dir": "",
        "model_dir": tmp_path / "model",
        "output_data_dir": tmp_path / "metrics",
        "output_dir": tmp_path / "output",
        "checkpoint_dir": "",
        "max_seq_length": 128,
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "logging_steps": 1,
        "bf16": "false",
    }
    with caplog.at_level(logging.WARNING, logger="train"):
        assert train_module.main([part for key, value in flags.items() for part in (f"--{key}", str(value))]) == 0
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(message.startswith("--max_seq_length 128 exceeds the base model's limit of 64") for message in warnings)
    metrics = json.loads((tmp_path / "metrics" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["max_seq_length"] == TINY_POSITIONS
    assert metrics["train"]["steps"] == 1
