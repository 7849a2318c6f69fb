"""training_code/ ships alone (sourcedir.tar.gz; inference.py alone in model.tar.gz/code/): no imports from outside it.

Only the standard library, what the Hugging Face DLCs ship, and files of the folder itself may be imported; a
stray ``from config import ...`` would work in this repository's tests and fail in the container.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training_code.harness_support import TRAINING_CODE, subprocess_env

# In the training and inference DLCs; sagemaker_inference only in the inference one, and guarded by ImportError.
CONTAINER_PACKAGES = {"torch", "transformers", "numpy", "tokenizers", "safetensors", "sagemaker_inference"}


def imported_top_level_names(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (lazy imports inside functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import; the folder is not a package"
            names.add((node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(TRAINING_CODE.glob("*.py")), ids=lambda path: path.name)
def test_imports_only_stdlib_container_packages_and_sibling_files(path: Path) -> None:
    siblings = {sibling.stem for sibling in TRAINING_CODE.glob("*.py")}
    allowed = set(sys.stdlib_module_names) | CONTAINER_PACKAGES | siblings | {"__future__"}
    assert imported_top_level_names(path) <= allowed, imported_top_level_names(path) - allowed
    if path.name == "inference.py":
        # It is copied alone into model/code/: not even the sibling files are there.
        assert not imported_top_level_names(path) & (siblings - {"inference"})


def test_modules_import_from_a_copy_of_the_folder_alone(tmp_path: Path) -> None:
    copy = tmp_path / "sourcedir"
    shutil.copytree(TRAINING_CODE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    # -I: no PYTHONPATH, no user site, no current directory, so only the copy and site-packages are importable.
    code = "import sys; sys.path.insert(0, sys.argv[1]); import train, evaluate, inference, nlp_data"
    completed = subprocess.run(
        [sys.executable, "-I", "-c", code, str(copy)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
