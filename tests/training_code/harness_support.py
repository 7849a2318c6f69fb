"""Helpers for the training-code tests: synthetic curated data, module loading, the training-toolkit harness."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING_CODE = REPO_ROOT / "training_code"
# train.py and evaluate.py import their shared helper by its top-level name, as they do inside the containers.
if str(TRAINING_CODE) not in sys.path:
    sys.path.insert(0, str(TRAINING_CODE))

LABELS = ["sports", "weather", "food"]
TOPIC_WORDS = {
    "sports": ["goal", "match", "team", "score", "coach", "league", "striker", "referee"],
    "weather": ["rain", "storm", "sunny", "cloud", "forecast", "wind", "snow", "humid"],
    "food": ["pasta", "bread", "cheese", "recipe", "soup", "spicy", "bake", "salad"],
}
FILLER_WORDS = ["the", "a", "today", "really", "was", "very", "and", "then", "we", "saw", "it", "for", "some", "of"]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: one torch thread, this venv first on PATH, no hub access attempts."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def load_module(name: str, path: Path) -> ModuleType:
    """Import a training_code file under a distinctive name so it cannot collide with other suites' modules."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def make_text(rng: random.Random, label: str) -> str:
    """A sentence of filler words with one to three topic words; lengths vary so batching by length matters."""
    words = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(2, 14))]
    for _ in range(rng.randint(1, 3)):
        words.insert(rng.randint(0, len(words)), rng.choice(TOPIC_WORDS[label]))
    return " ".join(words)


def write_split(directory: Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSON Lines, the curated format."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record) for record in records]
    (directory / "part-00000.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_records(seed: int, count: int) -> list[dict[str, Any]]:
    """Balanced synthetic records with ids."""
    rng = random.Random(seed)
    return [
        {"id": f"{seed}-{i}", "text": make_text(rng, LABELS[i % len(LABELS)]), "label": LABELS[i % len(LABELS)]}
        for i in range(count)
    ]


def build_tiny_pretrained(directory: Path, seed: int = 0) -> Path:
    """A randomly initialised two-layer BERT and a WordPiece tokenizer, saved like a hub checkpoint.

    Byte-identical in every process (test_fixture_determinism.py checks it): the accuracy thresholds and expected
    labels of the harness and serving tests hold for this one model. So the weights are drawn after a fixed
    ``torch.manual_seed``, and the vocabulary is listed from the sorted corpus words instead of being learned by
    ``tokenizers``' WordPiece trainer, whose result changes from process to process. ``seed`` exists to measure how
    much the tests' thresholds depend on the draw; the fixture uses 0.
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    rng = random.Random(0)
    corpus = [make_text(rng, LABELS[i % 3]) for i in range(600)]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = sorted(
        {word for text in corpus for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))}
    )
    # Single characters and their continuation pieces let words outside the corpus split into pieces, not [UNK].
    characters = sorted({character for word in words for character in word})
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = special + words + [c for c in characters if c not in words] + [f"##{c}" for c in characters]
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(tokens)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
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
    # The initial weights, classifier head included, are the same in every process; the global generator is
    # restored afterwards so building the fixture does not change what later code in this process draws.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    model.save_pretrained(directory)
    return directory


@dataclass(frozen=True)
class CuratedData:
    """Paths of a curated dataset laid out like the Glue job's output."""

    root: Path
    train: Path
    validation: Path
    test: Path
    labels: Path


def build_sourcedir(destination: Path) -> Path:
    """Pack training_code/ as the sourcedir.tar.gz the script-mode container downloads and extracts."""
    archive = destination / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(TRAINING_CODE.iterdir()):
            if path.suffix in {".py", ".md", ".txt"}:
                tar.add(path, arcname=path.name)
    return archive


@dataclass(frozen=True)
class HarnessRun:
    """Result of one run of the SageMaker training toolkit against a temporary /opt/ml tree."""

    base: Path
    returncode: int
    log: str

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"


def run_training_toolkit(
    base: Path, channels: dict[str, Path], hyperparameters: dict[str, Any], timeout: float = 240
) -> HarnessRun:
    """Lay out /opt/ml under ``base`` the way SageMaker does and run the toolkit's ``train`` entry point."""
    config = base / "input" / "config"
    config.mkdir(parents=True)
    for name, source in channels.items():
        target = base / "input" / "data" / name
        target.mkdir(parents=True)
        for path in source.iterdir():
            if path.is_file():
                (target / path.name).write_bytes(path.read_bytes())
    submit = build_sourcedir(base)
    reserved = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": str(submit),
        "sagemaker_region": "us-east-1",
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": "pytest-training-job",
    }
    # SageMaker stores every hyperparameter value as a JSON-encoded string.
    encoded = {key: json.dumps(value) for key, value in {**hyperparameters, **reserved}.items()}
    (config / "hyperparameters.json").write_text(json.dumps(encoded), encoding="utf-8")
    channel_config = {
        name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        for name in channels
    }
    (config / "inputdataconfig.json").write_text(json.dumps(channel_config), encoding="utf-8")
    resource = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    (config / "resourceconfig.json").write_text(json.dumps(resource), encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "sagemaker_training.cli.train"],
        cwd=base,
        env=subprocess_env(SAGEMAKER_BASE_DIR=str(base), SM_STUDIO_LOCAL_MODE="true"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return HarnessRun(base=base, returncode=completed.returncode, log=completed.stdout + completed.stderr)


TINY_HYPERPARAMETERS = {
    "max_steps": 100,
    "per_device_train_batch_size": 16,
    "learning_rate": 0.002,
    "warmup_ratio": 0.1,
    "max_seq_length": 48,
    "logging_steps": 20,
    "seed": 7,
}
