"""The real CDK CLI path (cdk.json's app command, the pinned CLI): what `make synth` and a reviewer run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CDK = REPO / "node_modules" / ".bin" / "cdk"


def run_cdk(*args: str) -> subprocess.CompletedProcess[str]:
    if not CDK.exists():
        pytest.fail("node_modules/.bin/cdk is missing: run `make setup` (npm ci installs the pinned CDK CLI)")
    env = {**os.environ, "PATH": f"{CDK.parent}{os.pathsep}{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(CDK), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_cli_synthesizes_every_prod_stack_with_the_compliance_packs(tmp_path: Path) -> None:
    # With a model given on the command line, as a pull request previews a promotion: the Serving stack too.
    arn = "arn:aws:sagemaker:us-east-1:210987654321:model-package/nlp-prod-models/12"
    result = run_cdk(
        "synth", "--quiet", "-c", "stage=prod", "-c", f"model_package_arn={arn}", "--output", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = sorted(p.name for p in tmp_path.glob("*.template.json"))
    parts = ("data", "network", "pipeline", "serving", "workbench")
    assert names == [f"nlp-prod-{part}.template.json" for part in sorted(parts)]
    assert arn in (tmp_path / "nlp-prod-serving.template.json").read_text()
    assert "ERROR" not in result.stderr
    assert "Unknown option" not in result.stderr


def test_cli_fails_with_one_line_for_an_unknown_stage(tmp_path: Path) -> None:
    result = run_cdk("synth", "--quiet", "-c", "stage=qa", "--output", str(tmp_path))
    assert result.returncode != 0
    assert "error: invalid setting stage='qa': known stages are dev, prod" in result.stderr
    assert "Traceback" not in result.stderr
