"""Checks that run before every deploy on the lifecycle scripts and their helpers.

SageMaker accepts a lifecycle script only as base64 of at most 16,384 characters, runs it with bash on Linux (a CRLF
breaks it), and the notebook has no internet access, so nothing may be downloaded from an internet host.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

LIFECYCLE_DIR = Path(__file__).resolve().parents[2] / "notebook_lifecycle"
HELPERS_DIR = LIFECYCLE_DIR / "helpers"
LIFECYCLE_SCRIPTS = (LIFECYCLE_DIR / "on_create.sh", LIFECYCLE_DIR / "on_start.sh")
SHELL_SCRIPTS = (*LIFECYCLE_SCRIPTS, *sorted(HELPERS_DIR.glob("*.sh")))
SHIPPED_FILES = (*SHELL_SCRIPTS, *sorted(HELPERS_DIR.glob("*.py")), *sorted(HELPERS_DIR.glob("*.txt")))

MARKER_LINE = "# @PLATFORM_PARAMETERS@"
# What the CDK component exports in place of the marker (the contract in notebook_lifecycle/README.md).
CONTRACT_PARAMETERS = (
    "AWS_REGION_NAME",
    "RAW_BUCKET",
    "CURATED_BUCKET",
    "ARTIFACTS_BUCKET",
    "KMS_KEY_ARN",
    "GLUE_JOB_NAME",
    "PIPELINE_NAME",
    "MODEL_PACKAGE_GROUP_NAME",
    "ENDPOINT_NAME",
    "INFERENCE_API_URL",
    "CODEARTIFACT_DOMAIN",
    "CODEARTIFACT_DOMAIN_OWNER",
    "CODEARTIFACT_REPOSITORY",
    "IDLE_MINUTES",
    "NOTEBOOK_INSTANCE_NAME",
    "HELPERS_S3_URI",
)
LIFECYCLE_LIMIT_BASE64_CHARS = 16_384
INJECTED_LINES, INJECTED_LINE_CHARS = 16, 256

DOWNLOAD_COMMANDS = re.compile(
    r"\b(curl|wget|git\s+clone|pip3?\s+download|conda\s+(install|create)|dnf\s+install|yum\s+install)\b"
)
URL = re.compile(r"\b(?:https?|ftp)://([^/\s\"'`]+)")
# Hosts reachable from the VPC: the local Jupyter server and AWS service endpoints (through the VPC endpoints).
ALLOWED_HOST = re.compile(r"^(?:[^@]*@)?(localhost|127\.0\.0\.1|[^/]*\.amazonaws\.com)(:\d+)?$")


def render_with_parameter_block(script: str) -> str:
    """Replace the marker as the CDK component does, with the largest block the contract allows."""
    filler = "x" * (INJECTED_LINE_CHARS - len("export P00=''"))
    block = "\n".join(f"export P{index:02d}='{filler}'" for index in range(INJECTED_LINES))
    return script.replace(MARKER_LINE, block)


def internet_downloads(text: str) -> list[str]:
    """Every download command, and every URL whose host is not local or an AWS endpoint, found in ``text``."""
    findings = [match.group(0) for match in DOWNLOAD_COMMANDS.finditer(text)]
    findings += [match.group(0) for match in URL.finditer(text) if not ALLOWED_HOST.match(match.group(1))]
    return findings


@pytest.mark.parametrize("script", LIFECYCLE_SCRIPTS, ids=lambda path: path.name)
def test_lifecycle_script_fits_the_base64_limit_with_the_largest_parameter_block(script: Path) -> None:
    rendered = render_with_parameter_block(script.read_text(encoding="utf-8"))
    assert rendered.count("\n") >= INJECTED_LINES

    encoded = base64.b64encode(rendered.encode("utf-8"))

    assert len(encoded) <= LIFECYCLE_LIMIT_BASE64_CHARS, (
        f"{script.name} is {len(encoded)} base64 characters with the parameter block; the limit is "
        f"{LIFECYCLE_LIMIT_BASE64_CHARS}: move code into notebook_lifecycle/helpers/"
    )


@pytest.mark.parametrize("script", LIFECYCLE_SCRIPTS, ids=lambda path: path.name)
def test_lifecycle_script_has_the_parameter_marker_once_right_after_strict_mode(script: Path) -> None:
    lines = script.read_text(encoding="utf-8").splitlines()

    assert sum("@PLATFORM_PARAMETERS@" in line for line in lines) == 1
    assert lines.count(MARKER_LINE) == 1
    assert lines[lines.index(MARKER_LINE) - 1] == "set -euo pipefail"


@pytest.mark.parametrize("script", LIFECYCLE_SCRIPTS, ids=lambda path: path.name)
def test_lifecycle_script_header_lists_every_parameter_it_reads(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    header, body = text.split("set -euo pipefail", 1)
    assert "# OVERVIEW" in header
    assert "# PARAMETERS" in header

    read = {name for name in CONTRACT_PARAMETERS if re.search(rf"\b{name}\b", body)}

    assert read, f"{script.name} reads no parameter"
    assert {name for name in read if not re.search(rf"\b{name}\b", header)} == set()


def test_on_start_reads_every_contract_parameter_and_no_other() -> None:
    body = (LIFECYCLE_DIR / "on_start.sh").read_text(encoding="utf-8").split(MARKER_LINE, 1)[1]

    missing = [name for name in CONTRACT_PARAMETERS if not re.search(rf"\b{name}\b", body)]
    assert missing == []
    # Upper-case names the script reads that are neither parameters nor its own documented settings.
    own = {"PATH", "HELPERS_DIR", "PLATFORM_DIR", "NOTEBOOK_USER", "PLATFORM_HELPERS_DIR", "PLATFORM_NOTEBOOK_USER"}
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", body)) | set(re.findall(r"\$\{!?([A-Z][A-Z0-9_]*)", body))
    assert used - own - set(CONTRACT_PARAMETERS) == set()


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: str(path.relative_to(LIFECYCLE_DIR)))
def test_shipped_file_has_unix_line_endings(path: Path) -> None:
    assert b"\r" not in path.read_bytes(), f"{path} has CR characters; convert it with dos2unix"


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: str(path.relative_to(LIFECYCLE_DIR)))
def test_shell_script_is_bash_in_strict_mode(script: Path) -> None:
    lines = script.read_text(encoding="utf-8").splitlines()

    assert lines[0] == "#!/bin/bash"
    assert "set -euo pipefail" in lines


def test_shellcheck_reports_nothing() -> None:
    shellcheck = Path(sys.executable).with_name("shellcheck")
    assert shellcheck.exists(), f"{shellcheck} is missing: pip install -r requirements/test-workbench.txt"

    result = subprocess.run(
        [str(shellcheck), "--shell=bash", "--severity=style", *map(str, SHELL_SCRIPTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: str(path.relative_to(LIFECYCLE_DIR)))
def test_shipped_file_downloads_nothing_from_an_internet_host(path: Path) -> None:
    assert internet_downloads(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "line",
    [
        "wget https://raw.githubusercontent.com/aws-samples/x/master/autostop.py",
        "curl -fsSL https://example.org/install.sh | bash",
        "pip install --index-url https://pypi.org/simple/ pandas",
        "conda install -y -c conda-forge pandas",
        'urllib.request.urlopen("https://github.com/org/repo/archive/main.zip")',
    ],
)
def test_download_check_catches_what_the_public_samples_do(line: str) -> None:
    assert internet_downloads(line) != []


def test_download_check_allows_the_local_server_and_aws_endpoints() -> None:
    text = (
        'DEFAULT_JUPYTER_URL = "https://localhost:8443"\n'
        'index_url="https://aws:${token}@${domain}-${owner}.d.codeartifact.${region}.amazonaws.com/pypi/r/simple/"\n'
    )

    assert internet_downloads(text) == []


def test_notebook_requirements_are_exact_pins_with_the_platform_boto3() -> None:
    lines = (HELPERS_DIR / "requirements-notebook.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line for line in lines if line.strip() and not line.startswith("#")]
    test_pins = (LIFECYCLE_DIR.parent / "requirements" / "test-workbench.txt").read_text(encoding="utf-8")

    assert requirements, "requirements-notebook.txt lists no package"
    assert [line for line in requirements if not re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+-]+", line)] == []
    boto3_pin = next(line for line in requirements if line.startswith("boto3=="))
    assert boto3_pin in test_pins.splitlines(), "pin boto3 to the version the tests use (requirements/)"
