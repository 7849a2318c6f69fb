"""Write the platform's resource names into the environment file that notebooks read.

``on_start.sh`` runs this at every start with the lifecycle parameters in its environment. It writes two files with
the same content into the output folder (default ``/home/ec2-user/SageMaker/.platform``):

- ``env``: ``KEY=value`` lines, one per resource; ``source`` it in a terminal (``set -a; . env; set +a``) or parse it;
- ``env.json``: the same as a JSON object, for code that prefers JSON.

Values are checked before anything is written, so a notebook never reads a half-written or empty bucket name: every
key must be set and non-empty, except ``ENDPOINT_NAME`` and ``INFERENCE_API_URL``, which are empty while no
endpoint is deployed. Only the
standard library is used (the script runs on the instance's system Python).

Usage::

    python3 write_platform_env.py [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_OUTPUT_DIR = Path("/home/ec2-user/SageMaker/.platform")
ENV_FILE_NAME = "env"
JSON_FILE_NAME = "env.json"

# The resource names a notebook needs, in the order they appear in the file.
ENV_FILE_KEYS: tuple[str, ...] = (
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
    "NOTEBOOK_INSTANCE_NAME",
    "IDLE_MINUTES",
)
MAY_BE_EMPTY = frozenset({"ENDPOINT_NAME", "INFERENCE_API_URL"})
# Names, ARNs and numbers only: nothing that a shell would expand or split when the file is sourced.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:/@+=,-]*$")


def platform_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Pick and check the environment file's values from ``environ``; raise ValueError naming every bad key."""
    problems = []
    values: dict[str, str] = {}
    for key in ENV_FILE_KEYS:
        value = environ.get(key)
        if value is None or (value == "" and key not in MAY_BE_EMPTY):
            problems.append(f"{key} is not set (the lifecycle parameters block must export it)")
        elif not _SAFE_VALUE.match(value):
            problems.append(f"{key}={value!r} contains characters other than letters, digits and ._:/@+=,-")
        else:
            values[key] = value
    if problems:
        raise ValueError("cannot write the platform environment file: " + "; ".join(problems))
    return values


def render_env_file(values: Mapping[str, str]) -> str:
    """Render ``KEY=value`` lines with a header that says where they come from."""
    lines = [
        "# Resource names of the platform, written by the notebook's on-start lifecycle script at every start.",
        "# Do not edit: changes are overwritten. Read it from a notebook, or in a terminal: set -a; . ./env; set +a",
    ]
    lines += [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, content: str) -> None:
    # A notebook may read the file at any moment: write a sibling file, then rename it over the old one.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_platform_env(output_dir: Path, environ: Mapping[str, str]) -> tuple[Path, Path]:
    """Write ``env`` and ``env.json`` into ``output_dir`` and return their paths."""
    values = platform_values(environ)
    output_dir.mkdir(parents=True, exist_ok=True)
    env_path, json_path = output_dir / ENV_FILE_NAME, output_dir / JSON_FILE_NAME
    _write_atomically(env_path, render_env_file(values))
    _write_atomically(json_path, json.dumps(values, indent=2) + "\n")
    return env_path, json_path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point used by on_start.sh."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"default: {DEFAULT_OUTPUT_DIR}")
    args = parser.parse_args(argv)
    try:
        env_path, json_path = write_platform_env(args.output_dir, os.environ)
    except (ValueError, OSError) as error:
        print(f"write_platform_env: {error}", file=sys.stderr)
        return 1
    print(f"write_platform_env: wrote {env_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
