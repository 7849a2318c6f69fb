"""The tiny pretrained model every training-code test starts from must be the same in every process.

Accuracy thresholds and expected labels in the harness and serving tests were tuned on one fixture build; if the
weights or the vocabulary changed from run to run (an unseeded initialisation, a trainer-built vocabulary, hash-seeded
set order), those tests would pass or fail by luck.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.training_code.harness_support import REPO_ROOT, subprocess_env

pytestmark = pytest.mark.slow

BUILD = """
import sys
from pathlib import Path
from tests.training_code.harness_support import build_tiny_pretrained
build_tiny_pretrained(Path(sys.argv[1]))
"""


def build_in_fresh_process(directory: Path, hash_seed: str) -> dict[str, bytes]:
    """Build the fixture in its own interpreter (its own torch RNG and string-hash seed); return each file's bytes."""
    directory.mkdir()
    completed = subprocess.run(
        [sys.executable, "-c", BUILD, str(directory)],
        cwd=REPO_ROOT,
        env=subprocess_env(PYTHONHASHSEED=hash_seed),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_two_processes_build_byte_identical_weights_and_vocabularies(tmp_path: Path) -> None:
    first = build_in_fresh_process(tmp_path / "first", hash_seed="1")
    second = build_in_fresh_process(tmp_path / "second", hash_seed="2")
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= set(first)
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"fixture files differ between two processes: {differing}"
