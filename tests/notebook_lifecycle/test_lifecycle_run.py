"""The real lifecycle scripts run in a sandbox: rendered as the CDK component renders them, with the instance's
fixed paths moved under tmp_path and fake `aws`, `sudo` and `systemctl` commands that record their calls.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

LIFECYCLE_DIR = Path(__file__).resolve().parents[2] / "notebook_lifecycle"
HELPERS_DIR = LIFECYCLE_DIR / "helpers"
MARKER_LINE = "# @PLATFORM_PARAMETERS@"
TOKEN = "eyJ2ZXIiOjEsImlzdSI6MTcwMDAwMDAwMH0.secret-token"
HELPERS_URI = "s3://dev-artifacts-bucket/assets/0123abcd.zip"

PARAMETERS = {
    "AWS_REGION_NAME": "eu-west-1",
    "RAW_BUCKET": "dev-raw-bucket",
    "CURATED_BUCKET": "dev-curated-bucket",
    "ARTIFACTS_BUCKET": "dev-artifacts-bucket",
    "KMS_KEY_ARN": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "GLUE_JOB_NAME": "dev-prepare-dataset",
    "PIPELINE_NAME": "dev-training-pipeline",
    "MODEL_PACKAGE_GROUP_NAME": "dev-text-classifier",
    "ENDPOINT_NAME": "",
    "INFERENCE_API_URL": "",
    "CODEARTIFACT_DOMAIN": "nlp-platform",
    "CODEARTIFACT_DOMAIN_OWNER": "111122223333",
    "CODEARTIFACT_REPOSITORY": "pypi-proxy",
    "IDLE_MINUTES": "45",
    "NOTEBOOK_INSTANCE_NAME": "dev-alice",
    "HELPERS_S3_URI": HELPERS_URI,
}

FAKE_AWS = """#!/bin/bash
echo "aws $*" >>"$FAKE_LOG"
case "$1 $2" in
    "s3 cp")
        source_uri="${*: -2:1}"
        if [ "$source_uri" != "$FAKE_HELPERS_URI" ]; then echo "fatal error: NoSuchKey $source_uri" >&2; exit 1; fi
        cp "$FAKE_HELPERS_ZIP" "${*: -1}" ;;
    "codeartifact get-authorization-token")
        if [ -n "${FAKE_CODEARTIFACT_DOWN:-}" ]; then echo "Could not connect to the endpoint URL" >&2; exit 255; fi
        echo "$FAKE_TOKEN" ;;
    *) echo "unexpected aws call: $*" >&2; exit 1 ;;
esac
"""
RECORDER = """#!/bin/bash
echo "$(basename "$0") $*" >>"$FAKE_LOG"
"""


def render(script: Path, parameters: dict[str, str]) -> str:
    """What the CDK component deploys: the marker line replaced by export lines."""
    block = "\n".join(f"export {name}='{value}'" for name, value in parameters.items())
    return script.read_text(encoding="utf-8").replace(MARKER_LINE, block)


@dataclass
class Sandbox:
    root: Path
    env: dict[str, str]

    @property
    def log(self) -> list[str]:
        path = Path(self.env["FAKE_LOG"])
        return path.read_text().splitlines() if path.exists() else []

    @property
    def helpers_dir(self) -> Path:
        return Path(self.env["PLATFORM_HELPERS_DIR"])

    @property
    def platform_dir(self) -> Path:
        return Path(self.env["PLATFORM_DIR"])

    def run(
        self, script: Path, parameters: dict[str, str] | None = PARAMETERS, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        text = render(script, parameters) if parameters is not None else script.read_text(encoding="utf-8")
        rendered = self.root / f"rendered-{script.name}"
        rendered.write_text(text)
        return subprocess.run(
            ["bash", str(rendered)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**self.env, **extra_env},
            check=False,
        )


@pytest.fixture(scope="session")
def helpers_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A CDK directory asset is a zip of the folder's contents, files at the root.
    archive = tmp_path_factory.mktemp("asset") / "helpers.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(HELPERS_DIR.iterdir()):
            if path.is_file():
                bundle.write(path, path.name)
    return archive


def make_sandbox(root: Path, helpers_zip: Path) -> Sandbox:
    """Fake commands and the instance's fixed paths moved under ``root``."""
    fake_bin = root / "bin"
    fake_bin.mkdir()
    for name, content in {"aws": FAKE_AWS, "sudo": RECORDER, "systemctl": RECORDER}.items():
        (fake_bin / name).write_text(content)
        (fake_bin / name).chmod(0o755)
    # The test interpreter has boto3, like the Jupyter system environment on an instance.
    (fake_bin / "python3").symlink_to(sys.executable)
    (root / "etc").mkdir()
    env = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "HOME": str(root / "home"),
        "FAKE_LOG": str(root / "calls.log"),
        "FAKE_HELPERS_URI": HELPERS_URI,
        "FAKE_HELPERS_ZIP": str(helpers_zip),
        "FAKE_TOKEN": TOKEN,
        "PLATFORM_HELPERS_DIR": str(root / "opt" / "platform-workbench" / "helpers"),
        "PLATFORM_DIR": str(root / "SageMaker" / ".platform"),
        "PLATFORM_NOTEBOOK_USER": getpass.getuser(),
        "PLATFORM_PIP_CONF": str(root / "etc" / "pip.conf"),
        "PLATFORM_CRON_DIR": str(root / "etc" / "cron.d"),
        "PLATFORM_SYSTEMD_DIR": str(root / "etc" / "systemd"),
        "PLATFORM_LOG_FILE": str(root / "jupyter.log"),
        "PLATFORM_SCHEDULER": "cron",
    }
    return Sandbox(root=root, env=env)


@pytest.fixture
def sandbox(tmp_path: Path, helpers_zip: Path) -> Sandbox:
    return make_sandbox(tmp_path, helpers_zip)


@dataclass
class StartedInstance:
    sandbox: Sandbox
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory, helpers_zip: Path) -> StartedInstance:
    """One run of on_start.sh shared by the tests that only read what it left behind."""
    sandbox = make_sandbox(tmp_path_factory.mktemp("started"), helpers_zip)
    result = sandbox.run(LIFECYCLE_DIR / "on_start.sh")
    assert result.returncode == 0, result.stderr
    return StartedInstance(sandbox, result)


def wait_for_log_line(sandbox: Sandbox, line: str, timeout_s: float = 10.0) -> None:
    """Background jobs of the scripts log after the script has ended: poll for a while."""
    deadline = time.monotonic() + timeout_s
    while line not in sandbox.log:
        assert time.monotonic() < deadline, f"{line!r} not logged within {timeout_s} s; log: {sandbox.log}"
        time.sleep(0.05)


def test_on_start_prepares_the_instance_from_the_bucket_and_aws_endpoints_only(started: StartedInstance) -> None:
    sandbox = started.sandbox

    assert sorted(path.name for path in sandbox.helpers_dir.iterdir()) == sorted(
        path.name for path in HELPERS_DIR.iterdir() if path.is_file()
    )
    assert f"aws s3 cp --only-show-errors --region eu-west-1 {HELPERS_URI}" in sandbox.log[0]
    assert sandbox.log[1] == (
        "aws codeartifact get-authorization-token --domain nlp-platform --domain-owner 111122223333 "
        "--region eu-west-1 --duration-seconds 43200 --query authorizationToken --output text"
    )
    wait_for_log_line(
        sandbox,
        f"sudo -u {getpass.getuser()} -H bash {sandbox.helpers_dir}/build_environment.sh {sandbox.platform_dir}",
    )
    assert len([line for line in sandbox.log if line.startswith("sudo")]) == 1


def test_on_start_writes_the_environment_file_that_notebooks_read(started: StartedInstance) -> None:
    platform_dir = started.sandbox.platform_dir

    env_lines = (platform_dir / "env").read_text().splitlines()
    assert "RAW_BUCKET=dev-raw-bucket" in env_lines
    assert "ENDPOINT_NAME=" in env_lines
    written = json.loads((platform_dir / "env.json").read_text())
    assert written["GLUE_JOB_NAME"] == "dev-prepare-dataset"
    assert "CODEARTIFACT_DOMAIN" not in written
    assert "HELPERS_S3_URI" not in written


def test_on_start_points_pip_at_codeartifact_without_printing_the_token(started: StartedInstance) -> None:
    pip_conf = Path(started.sandbox.env["PLATFORM_PIP_CONF"])
    expected = (
        f"index-url = https://aws:{TOKEN}@nlp-platform-111122223333.d.codeartifact.eu-west-1.amazonaws.com"
        "/pypi/pypi-proxy/simple/"
    )

    assert expected in pip_conf.read_text().splitlines()
    assert stat.S_IMODE(pip_conf.stat().st_mode) == 0o640
    assert TOKEN not in started.result.stdout + started.result.stderr


def test_on_start_schedules_the_auto_stop_and_the_token_renewal_in_cron(started: StartedInstance) -> None:
    sandbox = started.sandbox
    cron_file = Path(sandbox.env["PLATFORM_CRON_DIR"]) / "platform-workbench"
    log_file = sandbox.env["PLATFORM_LOG_FILE"]
    autostop = (
        f"*/5 * * * * root {sandbox.root}/bin/python3 {sandbox.helpers_dir}/autostop.py --idle-minutes 45 "
        f"--region eu-west-1 --instance-name dev-alice >>{log_file} 2>&1"
    )
    renewal = (
        f"0 */6 * * * root /bin/bash {sandbox.helpers_dir}/codeartifact_pip.sh nlp-platform 111122223333 pypi-proxy "
        f"eu-west-1 >>{log_file} 2>&1"
    )

    lines = cron_file.read_text().splitlines()

    assert autostop in lines
    assert renewal in lines
    assert stat.S_IMODE(cron_file.stat().st_mode) == 0o644


def test_the_scheduled_auto_stop_command_runs(started: StartedInstance) -> None:
    cron_file = Path(started.sandbox.env["PLATFORM_CRON_DIR"]) / "platform-workbench"
    cron_line = next(line for line in cron_file.read_text().splitlines() if "autostop.py" in line)
    command = cron_line.split(" root ", 1)[1].split(" >>", 1)[0].split()

    # No Jupyter listens on this port: the script must say so and keep the instance running.
    result = subprocess.run(
        [*command, "--jupyter-url", "http://127.0.0.1:9", "--timeout-seconds", "2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 1
    assert "decision=keep reason=cannot read the Jupyter server at http://127.0.0.1:9" in result.stderr


def test_on_start_uses_systemd_timers_where_cron_is_missing(sandbox: Sandbox) -> None:
    result = sandbox.run(LIFECYCLE_DIR / "on_start.sh", PLATFORM_SCHEDULER="systemd")

    assert result.returncode == 0, result.stderr
    units = Path(sandbox.env["PLATFORM_SYSTEMD_DIR"])
    service = (units / "platform-autostop.service").read_text()
    assert re.search(r"^ExecStart=\S+ \S+/autostop.py --idle-minutes 45 ", service, re.MULTILINE)
    assert "OnCalendar=*:0/5" in (units / "platform-autostop.timer").read_text()
    assert "OnCalendar=0/6:00" in (units / "platform-codeartifact-token.timer").read_text()
    assert "systemctl enable --now platform-autostop.timer platform-codeartifact-token.timer" in sandbox.log


def test_on_start_runs_again_at_the_next_start_and_replaces_the_helpers(sandbox: Sandbox) -> None:
    assert sandbox.run(LIFECYCLE_DIR / "on_start.sh").returncode == 0
    (sandbox.helpers_dir / "stale.py").write_text("left over from an older deploy")

    result = sandbox.run(LIFECYCLE_DIR / "on_start.sh")

    assert result.returncode == 0, result.stderr
    assert not (sandbox.helpers_dir / "stale.py").exists()
    assert sorted(path.name for path in sandbox.helpers_dir.parent.iterdir()) == ["helpers"]


def test_on_start_still_starts_when_the_package_repository_is_unreachable(sandbox: Sandbox) -> None:
    result = sandbox.run(LIFECYCLE_DIR / "on_start.sh", FAKE_CODEARTIFACT_DOWN="1")

    assert result.returncode == 0, result.stderr
    assert "WARNING: pip is not configured for CodeArtifact yet" in result.stderr
    assert (sandbox.platform_dir / "env").exists()


def test_on_start_refuses_to_run_without_the_parameter_block(sandbox: Sandbox) -> None:
    result = sandbox.run(LIFECYCLE_DIR / "on_start.sh", parameters=None)

    assert result.returncode == 1
    assert "on_start: parameter AWS_REGION_NAME is empty or not set" in result.stderr
    assert sandbox.log == []


def test_on_start_fails_clearly_when_the_helpers_object_is_missing(sandbox: Sandbox) -> None:
    result = sandbox.run(
        LIFECYCLE_DIR / "on_start.sh", {**PARAMETERS, "HELPERS_S3_URI": "s3://dev-artifacts-bucket/gone.zip"}
    )

    assert result.returncode != 0
    assert "NoSuchKey s3://dev-artifacts-bucket/gone.zip" in result.stderr


def build_command(sandbox: Sandbox) -> str:
    return f"sudo -u {getpass.getuser()} -H bash {sandbox.helpers_dir}/build_environment.sh {sandbox.platform_dir}"


def boot_work(sandbox: Sandbox) -> dict[str, int]:
    """How often the per-boot work ran so far: helper copies, CodeArtifact tokens, environment builds started."""
    return {
        "helpers": sum(
            line.startswith(f"aws s3 cp --only-show-errors --region eu-west-1 {HELPERS_URI}") for line in sandbox.log
        ),
        "token": sum(line.startswith("aws codeartifact get-authorization-token") for line in sandbox.log),
        "build": sandbox.log.count(build_command(sandbox)),
    }


def first_boot(sandbox: Sandbox) -> None:
    """What SageMaker runs when it creates an instance: on_create.sh, then on_start.sh."""
    for script in ("on_create.sh", "on_start.sh"):
        result = sandbox.run(LIFECYCLE_DIR / script)
        assert result.returncode == 0, (script, result.stderr)
    wait_for_log_line(sandbox, build_command(sandbox))
    time.sleep(0.5)  # a second background build, if any, would be logged by now


def test_first_boot_installs_the_helpers_fetches_a_token_and_starts_the_build_once(sandbox: Sandbox) -> None:
    first_boot(sandbox)

    assert boot_work(sandbox) == {"helpers": 1, "token": 1, "build": 1}
    assert (sandbox.helpers_dir / "build_environment.sh").exists()
    assert Path(sandbox.env["PLATFORM_PIP_CONF"]).exists()
    assert (sandbox.platform_dir / "env").exists()


def test_a_later_start_installs_everything_again_on_the_reset_root_volume(sandbox: Sandbox) -> None:
    first_boot(sandbox)
    # A stop and start resets the root volume (helpers, /etc); only the notebook volume keeps the platform folder.
    shutil.rmtree(sandbox.helpers_dir.parent)
    Path(sandbox.env["PLATFORM_PIP_CONF"]).unlink()

    result = sandbox.run(LIFECYCLE_DIR / "on_start.sh")

    assert result.returncode == 0, result.stderr
    wait_for_log_line(sandbox, build_command(sandbox))
    assert boot_work(sandbox)["helpers"] == 2 and boot_work(sandbox)["token"] == 2
    assert (sandbox.helpers_dir / "autostop.py").exists()
    assert Path(sandbox.env["PLATFORM_PIP_CONF"]).exists()


def test_on_create_contacts_nothing_and_prepares_the_platform_folder(sandbox: Sandbox) -> None:
    result = sandbox.run(LIFECYCLE_DIR / "on_create.sh")

    assert result.returncode == 0, result.stderr
    assert sandbox.log == []
    assert (sandbox.platform_dir / "logs").is_dir()
    assert not sandbox.helpers_dir.exists()
    assert "on_start.sh installs the helpers" in result.stdout


def test_on_create_refuses_to_run_without_the_parameter_block(sandbox: Sandbox) -> None:
    result = sandbox.run(LIFECYCLE_DIR / "on_create.sh", parameters=None)

    assert result.returncode == 1
    assert "on_create: parameter NOTEBOOK_INSTANCE_NAME is empty or not set" in result.stderr
    assert not sandbox.platform_dir.exists()


FAKE_BASE_PYTHON = """#!/bin/bash
echo "base-python $*" >>"$FAKE_LOG"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    cp "$FAKE_VENV_PYTHON" "$3/bin/python"
elif [ "$1" = "-c" ]; then
    echo "$FAKE_BASE_VERSION"
else
    exit 1
fi
"""
FAKE_VENV_PYTHON = """#!/bin/bash
echo "venv-python $*" >>"$FAKE_LOG"
if [ "$1" = "-c" ] && [ -n "${FAKE_IPYKERNEL_BROKEN:-}" ]; then exit 1; fi
"""


class TestBuildEnvironment:
    """build_environment.sh decides when to (re)build; fake Pythons record what it runs."""

    @pytest.fixture
    def build(self, sandbox: Sandbox) -> Sandbox:
        for name, content in {"base-python": FAKE_BASE_PYTHON, "venv-python": FAKE_VENV_PYTHON}.items():
            (sandbox.root / name).write_text(content)
            (sandbox.root / name).chmod(0o755)
        sandbox.env.update(
            PLATFORM_BASE_PYTHON=str(sandbox.root / "base-python"),
            FAKE_VENV_PYTHON=str(sandbox.root / "venv-python"),
            FAKE_BASE_VERSION="3.11.9",
        )
        return sandbox

    def run_build(
        self, sandbox: Sandbox, script: Path = HELPERS_DIR / "build_environment.sh", **extra: str
    ) -> list[str]:
        before = len(sandbox.log)
        result = subprocess.run(
            ["bash", str(script), str(sandbox.platform_dir)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**sandbox.env, **extra},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return sandbox.log[before:]

    def test_first_run_builds_the_venv_from_the_requirements_and_registers_the_kernel(self, build: Sandbox) -> None:
        calls = self.run_build(build)

        venv = build.platform_dir / "venv"
        assert f"base-python -m venv {venv}" in calls
        assert (
            "venv-python -m pip install --no-input --progress-bar off --disable-pip-version-check "
            f"-r {HELPERS_DIR}/requirements-notebook.txt"
        ) in calls
        assert (
            calls[-1]
            == "venv-python -m ipykernel install --user --name nlp-platform --display-name Python 3 (nlp-platform)"
        )

    def test_an_up_to_date_environment_is_only_registered_again(self, build: Sandbox) -> None:
        self.run_build(build)

        calls = self.run_build(build)

        assert not any("pip install" in call or "-m venv" in call for call in calls)
        assert calls[-1].startswith("venv-python -m ipykernel install")

    def test_a_new_base_python_or_a_broken_venv_triggers_a_rebuild(self, build: Sandbox) -> None:
        self.run_build(build)

        assert any("-m venv" in call for call in self.run_build(build, FAKE_BASE_VERSION="3.12.1"))
        assert any(
            "-m venv" in call for call in self.run_build(build, FAKE_BASE_VERSION="3.12.1", FAKE_IPYKERNEL_BROKEN="1")
        )

    def test_changed_requirements_trigger_a_rebuild(self, build: Sandbox) -> None:
        helpers = build.root / "helpers-copy"
        shutil.copytree(HELPERS_DIR, helpers)
        self.run_build(build, helpers / "build_environment.sh")
        with (helpers / "requirements-notebook.txt").open("a") as requirements:
            requirements.write("tqdm==4.67.1\n")

        assert any("pip install" in call for call in self.run_build(build, helpers / "build_environment.sh"))


def test_codeartifact_pip_explains_its_usage_when_called_wrongly(sandbox: Sandbox) -> None:
    result = subprocess.run(
        ["bash", str(HELPERS_DIR / "codeartifact_pip.sh"), "only-a-domain"],
        capture_output=True,
        text=True,
        timeout=30,
        env=sandbox.env,
        check=False,
    )

    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "got 1 arguments: only-a-domain" in result.stderr


def test_install_schedules_rejects_an_idle_time_that_is_not_whole_minutes(sandbox: Sandbox) -> None:
    environ = {**sandbox.env, **PARAMETERS, "IDLE_MINUTES": "1h"}

    result = subprocess.run(
        ["bash", str(HELPERS_DIR / "install_schedules.sh")],
        capture_output=True,
        text=True,
        timeout=30,
        env=environ,
        check=False,
    )

    assert result.returncode == 2
    assert "IDLE_MINUTES='1h' is not a whole number of minutes" in result.stderr
    assert not os.path.exists(Path(sandbox.env["PLATFORM_CRON_DIR"]) / "platform-workbench")
