"""The environment file that notebooks read: content, checks and atomic writing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from notebook_lifecycle.helpers import write_platform_env as env_writer

PLATFORM = {
    "AWS_REGION_NAME": "eu-west-1",
    "RAW_BUCKET": "dev-data-rawbucket0c3ee094-1a2b3c",
    "CURATED_BUCKET": "dev-data-curatedbucket6a59c97e-4d5e6f",
    "ARTIFACTS_BUCKET": "dev-data-artifactsbucket2aac5544-7a8b9c",
    "KMS_KEY_ARN": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "GLUE_JOB_NAME": "PrepareDatasetJob-AbC123",
    "PIPELINE_NAME": "dev-training-pipeline",
    "MODEL_PACKAGE_GROUP_NAME": "dev-text-classifier",
    "ENDPOINT_NAME": "",
    "INFERENCE_API_URL": "",
    "NOTEBOOK_INSTANCE_NAME": "dev-alice",
    "IDLE_MINUTES": "60",
}


def test_writes_key_value_lines_and_a_json_twin(tmp_path: Path) -> None:
    env_path, json_path = env_writer.write_platform_env(tmp_path / ".platform", {**PLATFORM, "UNRELATED": "x"})

    lines = [line for line in env_path.read_text().splitlines() if not line.startswith("#")]
    assert lines == [f"{key}={value}" for key, value in PLATFORM.items()]
    assert json.loads(json_path.read_text()) == PLATFORM
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o644


def test_the_env_file_can_be_sourced_by_bash(tmp_path: Path) -> None:
    env_path, _ = env_writer.write_platform_env(tmp_path, PLATFORM)

    result = subprocess.run(
        ["bash", "-c", f'set -a; . "{env_path}"; set +a; echo "$KMS_KEY_ARN|$ENDPOINT_NAME|$RAW_BUCKET"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
        env={"PATH": os.environ["PATH"]},
    )

    assert result.stdout.strip() == f"{PLATFORM['KMS_KEY_ARN']}||{PLATFORM['RAW_BUCKET']}"


def test_refuses_to_write_when_a_resource_name_is_missing_or_empty(tmp_path: Path) -> None:
    environ = {**PLATFORM, "RAW_BUCKET": ""}
    del environ["GLUE_JOB_NAME"]

    with pytest.raises(ValueError, match=r"RAW_BUCKET is not set.*GLUE_JOB_NAME is not set"):
        env_writer.write_platform_env(tmp_path, environ)

    assert list(tmp_path.iterdir()) == []


def test_refuses_values_a_shell_would_expand(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"PIPELINE_NAME='\$\(reboot\)' contains characters"):
        env_writer.write_platform_env(tmp_path, {**PLATFORM, "PIPELINE_NAME": "$(reboot)"})


def test_rewriting_replaces_the_previous_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    env_writer.write_platform_env(tmp_path, PLATFORM)
    env_writer.write_platform_env(tmp_path, {**PLATFORM, "ENDPOINT_NAME": "dev-classifier"})

    assert sorted(path.name for path in tmp_path.iterdir()) == ["env", "env.json"]
    assert "ENDPOINT_NAME=dev-classifier\n" in (tmp_path / "env").read_text()


def test_command_line_reports_the_bad_key_and_exits_with_1(tmp_path: Path) -> None:
    environ = {key: value for key, value in PLATFORM.items() if key != "CURATED_BUCKET"}
    script = Path(env_writer.__file__)

    result = subprocess.run(
        [sys.executable, str(script), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**environ, "PATH": os.environ["PATH"]},
        check=False,
    )

    assert result.returncode == 1
    assert "CURATED_BUCKET is not set" in result.stderr
