"""Source bundles: only runtime code goes in, and the same files always give the same .tar.gz bytes."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from components.source_bundle import bundle_files, write_deterministic_tar_gz


def _write(root: Path, relative: str, text: str = "x = 1\n") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    for relative in (
        "train.py",
        "nlp_data.py",
        "requirements.txt",
        "pkg/helpers.py",
        "pkg/__pycache__/helpers.cpython-312.pyc",
        "stale.pyc",
        "stale.pyo",
        "tests/test_train.py",
        "tests/conftest.py",
        "test_local.py",
        "pkg/test_helpers.py",
        ".env",
        ".hidden/config.py",
        ".ipynb_checkpoints/train-checkpoint.py",
        ".pytest_cache/v/cache",
    ):
        _write(root, relative)
    return root


def _names(root: Path, files: list[Path]) -> list[str]:
    return [path.relative_to(root).as_posix() for path in files]


def test_bundle_files_keeps_only_runtime_code_sorted(source: Path) -> None:
    assert _names(source, bundle_files(source)) == ["nlp_data.py", "pkg/helpers.py", "requirements.txt", "train.py"]


def test_bundle_files_include_limits_to_the_named_files(source: Path) -> None:
    files = bundle_files(source, include=["train.py", "pkg/helpers.py"])
    assert _names(source, files) == ["pkg/helpers.py", "train.py"]


def test_bundle_files_include_of_a_missing_file_raises_naming_it(source: Path) -> None:
    with pytest.raises(ValueError, match=r"evaluate\.py not found; fix the include list"):
        bundle_files(source, include=["train.py", "evaluate.py"])


def test_bundle_files_include_of_an_excluded_file_raises_naming_it(source: Path) -> None:
    with pytest.raises(ValueError, match=r"tests/test_train\.py not found"):
        bundle_files(source, include=["tests/test_train.py"])


def test_bundle_files_of_a_folder_with_nothing_to_ship_raises(tmp_path: Path) -> None:
    _write(tmp_path, "tests/test_only.py")
    _write(tmp_path, "__pycache__/x.pyc")
    with pytest.raises(ValueError, match="no files to bundle"):
        bundle_files(tmp_path)


def _archive(source: Path, out: Path) -> bytes:
    write_deterministic_tar_gz(source, bundle_files(source), out)
    return out.read_bytes()


def test_same_files_written_at_different_times_give_identical_archives(source: Path, tmp_path: Path) -> None:
    first = _archive(source, tmp_path / "first.tar.gz")
    for index, path in enumerate(sorted(source.rglob("*"))):
        os.utime(path, (1_000_000_000 + index, 1_700_000_000 + index * 3600))
    second = _archive(source, tmp_path / "second.tar.gz")
    assert first == second


def test_a_changed_file_changes_the_archive(source: Path, tmp_path: Path) -> None:
    first = _archive(source, tmp_path / "first.tar.gz")
    (source / "train.py").write_text("x = 2\n")
    assert _archive(source, tmp_path / "second.tar.gz") != first


def test_archive_opens_as_r_gz_with_sorted_entries_owned_by_root_at_mtime_0(source: Path, tmp_path: Path) -> None:
    archive = tmp_path / "sourcedir.tar.gz"
    _archive(source, archive)
    with tarfile.open(archive, mode="r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["nlp_data.py", "pkg/helpers.py", "requirements.txt", "train.py"]
        for member in members:
            assert member.isfile()
            assert member.mtime == 0
            assert member.uid == 0 and member.gid == 0
            assert member.uname == "root" and member.gname == "root"
        extracted = tar.extractfile("pkg/helpers.py")
        assert extracted is not None and extracted.read() == b"x = 1\n"


def test_archive_keeps_the_executable_bit_and_normalises_other_modes(source: Path, tmp_path: Path) -> None:
    (source / "train.py").chmod(0o700)
    (source / "nlp_data.py").chmod(0o600)
    archive = tmp_path / "sourcedir.tar.gz"
    _archive(source, archive)
    with tarfile.open(archive, mode="r:gz") as tar:
        assert tar.getmember("train.py").mode == 0o755
        assert tar.getmember("nlp_data.py").mode == 0o644


def test_gzip_header_has_mtime_0_and_no_file_name(source: Path, tmp_path: Path) -> None:
    data = _archive(source, tmp_path / "sourcedir.tar.gz")
    assert data[:2] == b"\x1f\x8b"
    flags = data[3]
    assert flags & 0x08 == 0, "FNAME flag set: the header carries a file name"
    assert int.from_bytes(data[4:8], "little") == 0
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
        gz.read()
        assert gz.mtime == 0
