"""Runtime code shipped as one deterministic ``.tar.gz`` file asset, bundled locally (no Docker).

SageMaker script mode opens ``sagemaker_submit_directory`` as ``r:gz``; a directory asset is a zip and fails. The
bundler writes the archive itself: entries sorted, mtime 0, owner root, fixed modes, no caches, tests or hidden files,
and a gzip header without a name or time. Two synths of the same code give byte-identical archives, so the asset hash
(and the template) change only when the code does.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

# What never belongs in a job's code: byte code, caches, tests, editor and OS files.
_EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", ".ipynb_checkpoints"}
_EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


def bundle_files(source: Path, include: Sequence[str] | None = None) -> list[Path]:
    """The files of ``source`` that go into the archive, sorted; ``include`` limits them to those names."""
    found = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or path.suffix in _EXCLUDED_SUFFIXES:
            continue
        if any(part in _EXCLUDED_PARTS or part.startswith(".") or part.startswith("test_") for part in relative.parts):
            continue
        if include is not None and relative.as_posix() not in include:
            continue
        found.append(path)
    if include is not None:
        missing = sorted(set(include) - {path.relative_to(source).as_posix() for path in found})
        if missing:
            raise ValueError(f"source bundle of {source}: {', '.join(missing)} not found; fix the include list")
    if not found:
        raise ValueError(f"source bundle of {source}: no files to bundle")
    return found


def write_deterministic_tar_gz(source: Path, files: Iterable[Path], archive: Path) -> None:
    """Write ``files`` (paths under ``source``) to ``archive`` so the same inputs always give the same bytes."""
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    with archive.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(payload.getvalue())


@jsii.implements(cdk.ILocalBundling)
class _TarGzBundler:
    """CDK local bundling: writes ``<archive_name>`` into the asset's output folder."""

    def __init__(self, source: Path, archive_name: str, include: Sequence[str] | None) -> None:
        self._source = source
        self._archive_name = archive_name
        self._include = include

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_: object) -> bool:
        files = bundle_files(self._source, self._include)
        write_deterministic_tar_gz(self._source, files, Path(output_dir) / self._archive_name)
        return True


class SourceBundle(Construct):
    """A folder of runtime code as one ``.tar.gz`` S3 asset (``asset``: bucket, key, ``s3_object_url``).

    :param source: the folder, e.g. ``training_code/``.
    :param archive_name: file name inside the asset staging folder. Default ``sourcedir.tar.gz``.
    :param include: only these relative paths (e.g. ``["evaluate.py", "nlp_data.py"]``). Default: every file.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source: Path,
        archive_name: str = "sourcedir.tar.gz",
        include: Sequence[str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        bundler = _TarGzBundler(source, archive_name, include)
        self.asset = s3_assets.Asset(
            self,
            "Asset",
            path=str(source),
            # The archive's own bytes key the asset: identical code, identical hash, whatever the file times.
            asset_hash_type=cdk.AssetHashType.OUTPUT,
            bundling=cdk.BundlingOptions(
                # Never used: local bundling always succeeds; CDK requires an image in the options.
                image=cdk.DockerImage.from_registry("local-bundling-only"),
                # CDK caches bundles by source and options, not by the local bundler: two bundles of one folder
                # must differ in their options, or the second reuses the first's archive.
                environment={"ARCHIVE": archive_name, "INCLUDE": ",".join(include or ["*"])},
                local=bundler,
                output_type=cdk.BundlingOutput.ARCHIVED,
            ),
        )

    @property
    def s3_object_url(self) -> str:
        """``s3://<bucket>/<key>`` of the archive."""
        return self.asset.s3_object_url
