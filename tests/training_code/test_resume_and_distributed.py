"""Spot resilience (stop, restart, same result) and DistributedDataParallel on CPU with the gloo backend."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.training_code.harness_support import TRAINING_CODE, CuratedData, subprocess_env

pytestmark = pytest.mark.slow

INTERRUPTED_EXIT_CODE = 143


def train_command(data: CuratedData, pretrained: Path, out: Path, checkpoints: Path, *extra: str) -> list[str]:
    return [
        str(TRAINING_CODE / "train.py"),
        f"--pretrained_dir={pretrained}",
        f"--train_dir={data.train}",
        f"--validation_dir={data.validation}",
        f"--model_dir={out / 'model'}",
        f"--output_data_dir={out / 'metrics'}",
        f"--output_dir={out / 'output'}",
        f"--checkpoint_dir={checkpoints}",
        "--max_steps=30",
        "--per_device_train_batch_size=16",
        "--learning_rate=0.002",
        "--max_seq_length=48",
        "--checkpoint_every_steps=8",
        "--keep_checkpoints=2",
        "--logging_steps=5",
        "--seed=11",
        *extra,
    ]


def start(command: list[str], log: Path, launcher: tuple[str, ...] = (sys.executable,)) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*launcher, *command], env=subprocess_env(), stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=log.parent
    )


def finish(process: subprocess.Popen[bytes], log: Path, expected: int = 0) -> None:
    assert process.wait(timeout=240) == expected, log.read_text()[-4000:]


def metrics(out: Path) -> dict[str, Any]:
    return json.loads((out / "metrics" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted_and_resumed(
    tmp_path_factory: pytest.TempPathFactory, curated_data: CuratedData, tiny_pretrained: Path
) -> tuple[Path, Path, Path]:
    """One run straight through and one stopped abruptly after step 13, then restarted, both in parallel."""
    root = tmp_path_factory.mktemp("resume")
    straight, resumed = root / "straight", root / "resumed"
    straight.mkdir()
    resumed.mkdir()
    checkpoints = resumed / "checkpoints"
    first = start(train_command(curated_data, tiny_pretrained, straight, straight / "ckpt"), straight / "run.log")
    second = start(
        train_command(curated_data, tiny_pretrained, resumed, checkpoints, "--interrupt_after_steps=13"),
        resumed / "interrupted.log",
    )
    finish(second, resumed / "interrupted.log", expected=INTERRUPTED_EXIT_CODE)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-00000008"]
    restart = start(train_command(curated_data, tiny_pretrained, resumed, checkpoints), resumed / "restart.log")
    finish(first, straight / "run.log")
    finish(restart, resumed / "restart.log")
    return straight, resumed, checkpoints


def test_restarted_run_resumes_from_newest_checkpoint(uninterrupted_and_resumed: tuple[Path, Path, Path]) -> None:
    _, resumed, checkpoints = uninterrupted_and_resumed
    assert "resumed from" in (resumed / "restart.log").read_text()
    assert metrics(resumed)["train"]["resumed_from_step"] == 8
    assert metrics(resumed)["train"]["steps"] == 30
    # Checkpoints at 8, 16, 24: only the newest two are kept, and no half-written one is left behind.
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-00000016", "checkpoint-00000024"]


def test_resumed_run_ends_with_the_same_metrics_as_an_uninterrupted_one(
    uninterrupted_and_resumed: tuple[Path, Path, Path],
) -> None:
    straight, resumed, _ = uninterrupted_and_resumed
    expected, actual = metrics(straight), metrics(resumed)
    assert actual["train"]["loss"] == pytest.approx(expected["train"]["loss"], rel=1e-9)
    assert actual["train"]["samples"] == expected["train"]["samples"]
    assert actual["validation"]["loss"] == pytest.approx(expected["validation"]["loss"], rel=1e-9)
    assert actual["validation"]["confusion_matrix"] == expected["validation"]["confusion_matrix"]


def test_interrupted_run_leaves_no_model_behind_it(uninterrupted_and_resumed: tuple[Path, Path, Path]) -> None:
    _, resumed, _ = uninterrupted_and_resumed
    log = (resumed / "interrupted.log").read_text()
    assert "stopping abruptly after step 13" in log
    assert "model saved" not in log


def test_torchrun_two_processes_train_in_step_with_gloo(
    tmp_path: Path, curated_data: CuratedData, tiny_pretrained: Path
) -> None:
    command = train_command(curated_data, tiny_pretrained, tmp_path, tmp_path / "ckpt", "--max_steps=12")
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
    process = start(command, tmp_path / "ddp.log", launcher)
    finish(process, tmp_path / "ddp.log")
    result = metrics(tmp_path)
    assert result["world_size"] == 2
    assert result["train"]["steps"] == 12
    # Each step consumes one batch of 16 on each of the two processes.
    assert result["train"]["samples"] == 12 * 16 * 2
    assert (tmp_path / "model" / "code" / "inference.py").is_file()
    # Checkpoint at step 8 gathered both ranks' generator states.
    log = (tmp_path / "ddp.log").read_text()
    assert "checkpoint saved" in log
    assert log.count("step 10/12") == 1, "only rank 0 logs progress"


def test_sigterm_checkpoints_the_current_step_and_exits_for_a_restart(
    tmp_path: Path, curated_data: CuratedData, tiny_pretrained: Path
) -> None:
    checkpoints = tmp_path / "ckpt"
    log = tmp_path / "run.log"
    # Far more steps than the test waits for: SIGTERM always arrives mid-run.
    command = train_command(
        curated_data, tiny_pretrained, tmp_path, checkpoints, "--max_steps=100000", "--checkpoint_every_steps=0"
    )
    process = start(command, log)
    deadline = time.monotonic() + 120
    while "step 10/100000" not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    finish(process, log, expected=INTERRUPTED_EXIT_CODE)
    [checkpoint] = list(checkpoints.iterdir())
    stopped_at = int(checkpoint.name.removeprefix("checkpoint-"))
    assert stopped_at >= 10
    assert f"SIGTERM received: stopping at step {stopped_at}" in log.read_text()
    assert not (tmp_path / "model" / "config.json").exists()
