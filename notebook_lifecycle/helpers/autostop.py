"""Stop this SageMaker notebook instance once its Jupyter server has been idle for a configured time.

Installed by ``on_start.sh`` and run from cron every few minutes as root. It works without internet access: it talks
only to the local Jupyter server (sessions, kernels, terminals, status) and to the SageMaker API through the VPC
interface endpoint. Only the standard library and boto3 (present on every notebook instance) are used.

What counts as activity:
- a kernel that is busy or starting keeps the instance running (a long cell is work in progress);
- an open terminal keeps it running (a process in a terminal cannot be observed from the Jupyter API);
- otherwise the newest kernel activity, or the server start when no kernel ever ran, must be older than the limit;
- browser connections to a kernel count only with ``--count-connections`` (an open, forgotten tab would otherwise keep
  the instance running all night).

When the Jupyter server cannot be reached the instance is never stopped: the script logs why and exits with 1.

Run by hand on the instance (nothing is stopped with --dry-run)::

    python3 autostop.py --idle-minutes 60 --dry-run
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("platform-autostop")

DEFAULT_JUPYTER_URL = "https://localhost:8443"
DEFAULT_METADATA_FILE = "/opt/ml/metadata/resource-metadata.json"
BUSY_KERNEL_STATES = frozenset({"busy", "starting", "restarting", "autorestarting"})
# Python 3.11 spells this datetime.UTC, but the instance's system Python may be older.
UTC = timezone.utc  # noqa: UP017

_JUPYTER_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>Z|z|[+-]\d{2}:?\d{2})?$"
)


class JupyterUnavailableError(RuntimeError):
    """The local Jupyter server did not answer, or answered something that is not its API."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True)
class Kernel:
    """One running kernel as the Jupyter API reports it."""

    kernel_id: str
    name: str
    execution_state: str
    last_activity: datetime | None
    connections: int
    notebook_path: str | None = None

    def describe(self) -> str:
        """Name the kernel the way a user recognises it: by its notebook when it has one."""
        where = f" of {self.notebook_path}" if self.notebook_path else ""
        return f"kernel {self.name} ({self.kernel_id}){where}"


@dataclass(frozen=True)
class Terminal:
    """One open terminal as the Jupyter API reports it."""

    name: str
    last_activity: datetime | None


@dataclass(frozen=True)
class JupyterActivity:
    """Everything the decision needs to know about the Jupyter server at one moment."""

    server_started: datetime | None
    kernels: tuple[Kernel, ...]
    terminals: tuple[Terminal, ...]


@dataclass(frozen=True)
class Decision:
    """Whether to stop the instance, and a sentence that says why (it goes to the log)."""

    stop: bool
    reason: str


def parse_jupyter_time(value: str) -> datetime:
    """Parse a Jupyter timestamp such as ``2026-11-27T16:00:00.123456Z`` into an aware UTC datetime.

    Jupyter writes UTC with a ``Z``; older Pythons' ``fromisoformat`` rejects that and odd fraction lengths, so the
    format is parsed here. A timestamp without a zone is taken as UTC, which is what Jupyter means by it.
    """
    match = _JUPYTER_TIME.match(value.strip())
    if match is None:
        raise ValueError(f"not a Jupyter timestamp: {value!r} (expected ISO 8601 like 2026-11-27T16:00:00.000000Z)")
    fraction = (match.group("fraction") or "0")[:6].ljust(6, "0")
    zone = match.group("zone") or "+00:00"
    if zone in ("Z", "z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    parsed = datetime.fromisoformat(f"{match.group('date')}T{match.group('time')}.{fraction}{zone}")
    return parsed.astimezone(UTC)


def _optional_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return parse_jupyter_time(value)


def _kernel_from_api(raw: Mapping[str, Any], notebook_path: str | None) -> Kernel:
    return Kernel(
        kernel_id=str(raw.get("id", "?")),
        name=str(raw.get("name", "?")),
        execution_state=str(raw.get("execution_state", "unknown")),
        last_activity=_optional_time(raw.get("last_activity")),
        connections=int(raw.get("connections") or 0),
        notebook_path=notebook_path,
    )


def activity_from_api(
    *,
    sessions: Iterable[Mapping[str, Any]],
    kernels: Iterable[Mapping[str, Any]],
    terminals: Iterable[Mapping[str, Any]],
    status: Mapping[str, Any],
) -> JupyterActivity:
    """Combine the answers of ``/api/sessions``, ``/api/kernels``, ``/api/terminals`` and ``/api/status``.

    Kernels come from ``/api/kernels`` (it also lists kernels without a notebook, such as consoles); sessions add the
    notebook path, and any kernel that only a session names is kept too.
    """
    paths: dict[str, str] = {}
    session_kernels: dict[str, Mapping[str, Any]] = {}
    for session in sessions:
        kernel = session.get("kernel") or {}
        kernel_id = kernel.get("id")
        if kernel_id:
            paths[kernel_id] = str(session.get("path") or session.get("name") or "")
            session_kernels[kernel_id] = kernel
    merged: dict[str, Kernel] = {}
    for raw in kernels:
        kernel_id = str(raw.get("id", "?"))
        merged[kernel_id] = _kernel_from_api(raw, paths.get(kernel_id))
    for kernel_id, raw in session_kernels.items():
        if kernel_id not in merged:
            merged[kernel_id] = _kernel_from_api(raw, paths.get(kernel_id))
    return JupyterActivity(
        server_started=_optional_time(status.get("started")),
        kernels=tuple(merged.values()),
        terminals=tuple(
            Terminal(name=str(raw.get("name", "?")), last_activity=_optional_time(raw.get("last_activity")))
            for raw in terminals
        ),
    )


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"


def decide(
    activity: JupyterActivity, *, now: datetime, idle_limit: timedelta, count_connections: bool = False
) -> Decision:
    """Decide whether the instance has been idle for at least ``idle_limit`` at time ``now`` (aware, UTC)."""
    busy = [kernel for kernel in activity.kernels if kernel.execution_state in BUSY_KERNEL_STATES]
    if busy:
        return Decision(False, f"{busy[0].describe()} is {busy[0].execution_state}")
    if activity.terminals:
        names = ", ".join(terminal.name for terminal in activity.terminals)
        return Decision(
            False, f"{len(activity.terminals)} terminal(s) open ({names}); close them to let the instance auto-stop"
        )
    if count_connections:
        connected = [kernel for kernel in activity.kernels if kernel.connections > 0]
        if connected:
            return Decision(False, f"{connected[0].describe()} has {connected[0].connections} browser connection(s)")
    moments = [kernel.last_activity for kernel in activity.kernels if kernel.last_activity is not None]
    if activity.server_started is not None:
        moments.append(activity.server_started)
    if not moments:
        return Decision(False, "Jupyter reported no activity time and no server start time; cannot tell idle time")
    last = max(moments)
    idle_for = now - last
    source = "kernel activity" if activity.kernels else "server start (no kernel has run)"
    summary = f"idle for {_minutes(idle_for)} since last {source} at {last.isoformat()}, limit {_minutes(idle_limit)}"
    return Decision(idle_for >= idle_limit, summary)


class JupyterClient:
    """Read-only client of the local Jupyter REST API.

    The notebook server listens on https://localhost:8443 with a self-signed certificate, so certificate checks are
    skipped for loopback addresses only; any other host is verified as usual.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"--jupyter-url {base_url!r} is not an http(s) URL; use for example {DEFAULT_JUPYTER_URL}")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._ssl_context: ssl.SSLContext | None = None
        if parsed.scheme == "https":
            self._ssl_context = ssl.create_default_context()
            if _is_loopback(parsed.hostname):
                self._ssl_context.check_hostname = False
                self._ssl_context.verify_mode = ssl.CERT_NONE

    def get(self, path: str) -> Any:
        """GET ``path`` and return the decoded JSON; raise JupyterUnavailableError on any failure."""
        # no_track_activity keeps these polls from counting as user activity on servers that honour it.
        url = f"{self.base_url}{path}?no_track_activity=1"
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if self._token:
            request.add_header("Authorization", f"token {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s, context=self._ssl_context) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise JupyterUnavailableError(
                f"GET {url} answered HTTP {error.code} {error.reason}", http_status=error.code
            ) from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise JupyterUnavailableError(f"GET {url} failed: {reason}") from error
        try:
            return json.loads(body)
        except ValueError as error:
            raise JupyterUnavailableError(f"GET {url} did not return JSON: {body[:80]!r}") from error

    def list_of(self, path: str) -> list[Mapping[str, Any]]:
        """GET a list endpoint and check that it is one."""
        answer = self.get(path)
        if not isinstance(answer, list):
            raise JupyterUnavailableError(f"GET {self.base_url}{path} returned {type(answer).__name__}, not a list")
        return answer

    def read_activity(self) -> JupyterActivity:
        """Read sessions, kernels, terminals and status in one go."""
        status = self.get("/api/status")
        if not isinstance(status, dict):
            raise JupyterUnavailableError(f"GET {self.base_url}/api/status returned {type(status).__name__}")
        try:
            terminals = self.list_of("/api/terminals")
        except JupyterUnavailableError as error:
            # A server started with terminals disabled answers 404 here: it simply has none open.
            if error.http_status != 404:
                raise
            terminals = []
        return activity_from_api(
            sessions=self.list_of("/api/sessions"),
            kernels=self.list_of("/api/kernels"),
            terminals=terminals,
            status=status,
        )


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def read_instance_name(metadata_file: Path, fallback: str | None) -> str:
    """Return the notebook instance's name from the instance metadata file, else the configured fallback."""
    try:
        name = json.loads(metadata_file.read_text(encoding="utf-8")).get("ResourceName")
    except (OSError, ValueError, AttributeError):
        name = None
    if name:
        return str(name)
    if fallback:
        return fallback
    raise ValueError(
        f"cannot tell this notebook instance's name: {metadata_file} has no ResourceName and neither "
        "--instance-name nor NOTEBOOK_INSTANCE_NAME is set"
    )


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface (cron passes the values from the lifecycle parameters)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle-minutes", type=int, required=True, help="stop after this many idle minutes (>= 1)")
    parser.add_argument("--jupyter-url", default=DEFAULT_JUPYTER_URL, help=f"default: {DEFAULT_JUPYTER_URL}")
    parser.add_argument("--token", default=os.environ.get("JUPYTER_TOKEN"), help="Jupyter token (default: none)")
    parser.add_argument("--count-connections", action="store_true", help="open browser tabs count as activity")
    parser.add_argument("--metadata-file", type=Path, default=Path(DEFAULT_METADATA_FILE))
    parser.add_argument(
        "--instance-name",
        default=os.environ.get("NOTEBOOK_INSTANCE_NAME"),
        help="used when the metadata file has no ResourceName (default: $NOTEBOOK_INSTANCE_NAME)",
    )
    parser.add_argument("--region", default=None, help="AWS region of the SageMaker API (default: boto3's chain)")
    parser.add_argument("--timeout-seconds", type=float, default=10.0, help="per request to Jupyter (default: 10)")
    parser.add_argument("--dry-run", action="store_true", help="log the decision, never stop")
    return parser


def run(argv: Sequence[str], *, sagemaker_client: Any = None, now: datetime | None = None) -> int:
    """Check idleness once and stop the instance if it is idle. Returns the process exit code.

    ``sagemaker_client`` and ``now`` exist for tests; on the instance boto3 builds the client.
    """
    args = build_parser().parse_args(argv)
    if args.idle_minutes < 1:
        LOGGER.error(
            "--idle-minutes is %s; it must be at least 1 (check the IDLE_MINUTES parameter)", args.idle_minutes
        )
        return 2
    idle_limit = timedelta(minutes=args.idle_minutes)
    try:
        client = JupyterClient(args.jupyter_url, token=args.token, timeout_s=args.timeout_seconds)
        activity = client.read_activity()
    except ValueError as error:
        LOGGER.error("%s", error)
        return 2
    except JupyterUnavailableError as error:
        LOGGER.error("decision=keep reason=cannot read the Jupyter server at %s (%s)", args.jupyter_url, error)
        return 1

    decision = decide(
        activity, now=now or datetime.now(UTC), idle_limit=idle_limit, count_connections=args.count_connections
    )
    if not decision.stop:
        LOGGER.info("decision=keep reason=%s", decision.reason)
        return 0
    try:
        name = read_instance_name(args.metadata_file, args.instance_name)
    except ValueError as error:
        LOGGER.error("decision=keep reason=%s", error)
        return 1
    if args.dry_run:
        LOGGER.info("decision=stop (dry run, not stopping %s) reason=%s", name, decision.reason)
        return 0
    LOGGER.info("decision=stop instance=%s reason=%s", name, decision.reason)
    return _stop_instance(name, sagemaker_client=sagemaker_client, region=args.region)


def _stop_instance(name: str, *, sagemaker_client: Any, region: str | None) -> int:
    if sagemaker_client is None:
        import boto3  # imported here so that --dry-run and the decision logic work without boto3

        sagemaker_client = boto3.client("sagemaker", region_name=region)
    try:
        sagemaker_client.stop_notebook_instance(NotebookInstanceName=name)
    except Exception as error:  # botocore's ClientError and connection errors: log them, cron retries later
        LOGGER.error(
            "could not stop notebook instance %s: %s (the notebook role needs sagemaker:StopNotebookInstance on it, "
            "and the SageMaker API endpoint must be reachable from the VPC)",
            name,
            error,
        )
        return 1
    LOGGER.info("stop requested for notebook instance %s", name)
    return 0


def main() -> None:
    """Entry point for cron."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
