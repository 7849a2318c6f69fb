"""Every example notebook is valid, compiles, and takes its resource names only from the platform environment file.

The notebooks drive a deployed platform, so they are never executed here; only the cell that reads the environment
file runs, against a file written by the same helper the notebook instance runs at start.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from components import data_preparation_job as job
from notebook_lifecycle.helpers import write_platform_env as env_writer

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
ENV_FILE = env_writer.DEFAULT_OUTPUT_DIR / env_writer.ENV_FILE_NAME
ENV_CELL_TAG = "platform-env"

# Keyword arguments through which boto3 calls name a platform resource.
RESOURCE_KEYWORDS = frozenset(
    {
        "Bucket",
        "JobName",
        "PipelineName",
        "ModelPackageGroupName",
        "EndpointName",
        "NotebookInstanceName",
        "SSEKMSKeyId",
        "KeyId",
    }
)
LITERAL_RESOURCE = re.compile(r"arn:aws[a-z-]*:|s3://[a-z0-9]|\.amazonaws\.com")


def load(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def without_magics(source: str) -> str:
    """IPython lines (%magic, !shell, help?) are not Python: blank them and keep the line numbers."""
    lines = source.splitlines()
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) or line.rstrip().endswith("?") else line for line in lines
    )


def code_cells(path: Path) -> list[Any]:
    return [cell for cell in load(path).cells if cell.cell_type == "code"]


def syntax_tree(path: Path) -> ast.Module:
    """All code cells of a notebook as one module, in order."""
    return ast.parse("\n\n".join(without_magics(cell.source) for cell in code_cells(path)), filename=str(path))


def test_there_is_an_example_notebook() -> None:
    assert NOTEBOOKS_DIR / "01_prepare_data.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_valid_nbformat_and_saved_without_outputs(path: Path) -> None:
    notebook = load(path)

    nbformat.validate(notebook)
    assert all(not cell.outputs and cell.execution_count is None for cell in code_cells(path)), (
        f"{path.name} has saved outputs; clear them before committing (Kernel > Restart Kernel and Clear Outputs)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_code_cell_compiles(path: Path) -> None:
    for index, cell in enumerate(code_cells(path)):
        try:
            compile(without_magics(cell.source), f"{path.name}[code cell {index}]", "exec")
        except SyntaxError as error:
            pytest.fail(f"{path.name}, code cell {index}: {error}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_reads_the_file_the_lifecycle_script_writes(path: Path) -> None:
    tagged = [cell for cell in code_cells(path) if ENV_CELL_TAG in cell.metadata.get("tags", [])]

    assert len(tagged) == 1, f"{path.name} needs exactly one code cell tagged {ENV_CELL_TAG!r} that reads the env file"
    assert f'Path("{ENV_FILE}")' in tagged[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_reads_only_keys_that_the_environment_file_has(path: Path) -> None:
    tree = syntax_tree(path)
    read = {
        node.slice.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "platform"
        and isinstance(node.slice, ast.Constant)
    }

    assert read, f"{path.name} reads no resource name from the platform environment file"
    assert read <= set(env_writer.ENV_FILE_KEYS)


def hardcoded_resources(tree: ast.AST) -> list[str]:
    """Literal resource names in code: as boto3 keyword arguments, ARNs, S3 URIs or endpoints, or env lookups."""
    findings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            findings += [
                f"{keyword.arg}={ast.unparse(keyword.value)}"
                for keyword in node.keywords
                if keyword.arg in RESOURCE_KEYWORDS and isinstance(keyword.value, (ast.Constant, ast.JoinedStr))
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and LITERAL_RESOURCE.search(node.value):
            findings.append(repr(node.value))
        elif isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
            findings.append(ast.unparse(node))
    return findings


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_hardcodes_no_resource_name(path: Path) -> None:
    assert hardcoded_resources(syntax_tree(path)) == [], (
        "name every resource through a variable read from the platform environment file"
    )


@pytest.mark.parametrize(
    "code",
    [
        's3.put_object(Bucket="team-raw-bucket", Key="x", Body=b"")',
        'glue.start_job_run(JobName=f"prepare-{stage}")',
        'uri = "s3://team-raw-bucket/incoming/"',
        'key = "arn:aws:kms:eu-west-1:111122223333:key/abc"',
        'bucket = os.environ["RAW_BUCKET"]',
        'bucket = os.getenv("RAW_BUCKET")',
    ],
)
def test_hardcoded_resource_check_catches(code: str) -> None:
    assert hardcoded_resources(ast.parse(code)) != []


def test_hardcoded_resource_check_allows_names_from_the_environment_file() -> None:
    code = (
        'RAW_BUCKET = platform["RAW_BUCKET"]\n'
        's3.put_object(Bucket=RAW_BUCKET, Key=f"{RAW_PREFIX}x")\n'
        'uri = f"s3://{RAW_BUCKET}/"\n'
    )

    assert hardcoded_resources(ast.parse(code)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_environment_cell_parses_the_file_written_at_start(path: Path, tmp_path: Path) -> None:
    values = {key: f"value-of-{key.lower().replace('_', '-')}" for key in env_writer.ENV_FILE_KEYS}
    values["ENDPOINT_NAME"] = ""
    env_path, _ = env_writer.write_platform_env(tmp_path, values)
    (cell,) = [cell for cell in code_cells(path) if ENV_CELL_TAG in cell.metadata.get("tags", [])]
    namespace: dict[str, Any] = {}

    exec(compile(cell.source, f"{path.name}[{ENV_CELL_TAG}]", "exec"), namespace)

    assert namespace["read_platform_env"](env_path) == values
    with pytest.raises(FileNotFoundError, match="stop and start the instance"):
        namespace["read_platform_env"](tmp_path / "missing")


def string_assignments(tree: ast.AST) -> dict[str, str]:
    """Module-level ``NAME = "..."`` or ``NAME = f"..."`` assignments, f-string fields written as ``{expr}``."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found[node.targets[0].id] = value.value
            elif isinstance(value, ast.JoinedStr):
                found[node.targets[0].id] = ast.unparse(value)[2:-1]
    return found


def test_example_notebook_keeps_its_samples_outside_the_jobs_default_prefixes() -> None:
    """The sample upload must never join the team's default run, nor its output replace the team's dataset."""
    assigned = string_assignments(syntax_tree(NOTEBOOKS_DIR / "01_prepare_data.ipynb"))
    raw_prefix, output_prefix = assigned["RAW_PREFIX"], assigned["OUTPUT_PREFIX"]
    for prefix, default in ((raw_prefix, job.RAW_PREFIX), (output_prefix, f"{job.CURATED_PREFIX}/")):
        assert prefix.startswith(job.EXAMPLES_PREFIX), prefix
        assert not prefix.startswith(default) and not default.startswith(prefix), (prefix, default)
        # Where the Glue job's role may read (raw) and write (curated).
        assert prefix.startswith(job.DATASETS_PREFIX), prefix


def test_example_notebook_resolves_the_run_through_the_latest_pointer() -> None:
    source = "\n".join(cell.source for cell in code_cells(NOTEBOOKS_DIR / "01_prepare_data.ipynb"))
    markdown = "\n".join(cell.source for cell in load(NOTEBOOKS_DIR / "01_prepare_data.ipynb").cells)
    assert '_LATEST"' in source
    assert 'pointer["run_prefix"]' in source and 'pointer["run_id"]' in source
    # Nothing reads the latest/ copy that the job no longer writes, nor guesses the run by listing.
    assert "latest/" not in markdown
    assert "LastModified" not in source
