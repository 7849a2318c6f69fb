"""train.py's checkpoint naming: which folders count as checkpoints and which one a restart resumes from."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.training_code.harness_support import TRAINING_CODE, load_module


@pytest.fixture(scope="module")
def train_module() -> ModuleType:
    return load_module("training_code_train", TRAINING_CODE / "train.py")


def test_checkpoint_step_reads_only_checkpoint_prefix_and_ascii_digits(train_module: ModuleType) -> None:
    step = train_module.checkpoint_step
    assert step(Path(f"{train_module.CHECKPOINT_PREFIX}00000024")) == 24
    assert step(Path("checkpoint-best")) is None
    assert step(Path("checkpoint-")) is None
    # str.isdigit accepts a superscript two, which int() would reject with a ValueError mid-resume.
    assert step(Path("checkpoint-\u00b2")) is None
    # A name of the prefix's length but another prefix: a fixed-width slice would read 7 here.
    assert step(Path("snapshot-xx7")) is None
    assert step(Path(".partial-checkpoint-00000032")) is None


def test_newest_checkpoint_is_the_highest_step_not_the_longest_or_last_name(
    train_module: ModuleType, tmp_path: Path
) -> None:
    for name in ("checkpoint-9", "checkpoint-00000024", "checkpoint-00000016", "checkpoint-best", "checkpoint-\u00b2"):
        (tmp_path / name).mkdir()
    (tmp_path / ".partial-checkpoint-00000040").mkdir()
    (tmp_path / "checkpoint-00000099").write_text("a file, not a checkpoint folder")
    assert train_module.newest_checkpoint(tmp_path) == tmp_path / "checkpoint-00000024"
    assert train_module.newest_checkpoint(tmp_path / "missing") is None
