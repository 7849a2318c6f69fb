"""Job arguments arrive as strings (Glue job arguments or the local command line): each is validated with an error
that names the argument, the bad value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import prepare_dataset
import pytest
from prepare_dataset import JobArgumentError, parse_job_arguments, parse_local_argv


def _parse(local: bool = True, **values: str) -> prepare_dataset.JobConfig:
    arguments = {"input_uri": "s3://raw/datasets", "output_uri": "s3://curated/datasets/default", **values}
    return parse_job_arguments(arguments, local=local, default_run_id="jr_123")


def test_defaults_fill_every_optional_argument() -> None:
    config = _parse(local=False)
    assert config.input_format == "jsonl"
    assert (config.text_field, config.label_field, config.id_field) == ("text", "label", None)
    assert config.encoding == "utf-8"
    assert config.split_ratios == (0.8, 0.1, 0.1)
    assert (config.seed, config.min_chars, config.max_chars) == (42, 1, 10000)
    assert config.labels is None
    assert config.run_id == "jr_123"
    assert config.run_prefix == "s3://curated/datasets/default/runs/jr_123"
    assert config.latest_pointer == "s3://curated/datasets/default/_LATEST"


def test_empty_strings_mean_not_set_for_optional_arguments() -> None:
    config = _parse(id_field="", labels="  ", run_id="")
    assert (config.id_field, config.labels, config.run_id) == (None, None, "jr_123")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("split_ratios", "0.8,0.1,0.2", "--split_ratios='0.8,0.1,0.2' must sum to 1 (these sum to 1.1)"),
        ("split_ratios", "0.8,0.2", "must hold three numbers train,validation,test"),
        ("split_ratios", "0,0.5,0.5", "the train ratio must be above 0"),
        ("split_ratios", "a,b,c", "--split_ratios='a,b,c' must hold three numbers"),
        ("split_ratios", "1.2,-0.1,-0.1", "between 0 and 1"),
        ("input_format", "parquet", "--input_format='parquet' is not one of ['csv', 'jsonl']"),
        ("encoding", "klingon-8", "--encoding='klingon-8' is not an encoding known to Python"),
        ("encoding", "utf-16", "--encoding='utf-16' is not ASCII-compatible"),
        ("encoding", "iso2022_jp", "is not ASCII-compatible"),
        ("encoding", "base64", "is a binary transform, not a text encoding"),
        ("min_chars", "ten", "--min_chars='ten' is not an integer"),
        ("min_chars", "0", "--min_chars='0' is below the minimum 1"),
        ("max_chars", "1", "--max_chars='1' must be greater than --min_chars=1"),
        ("seed", "1.5", "--seed='1.5' is not an integer"),
        ("labels", "a,,b", "--labels='a,,b' holds an empty label"),
        ("labels", "a, b ,a", "lists ['a'] more than once"),
        ("labels", "[1, 2]", "must be a JSON array of strings"),
        ("labels", "[oops", "is not a valid JSON array"),
        ("label_field", "text", "--label_field='text' is the same as --text_field"),
        ("id_field", "label", "--id_field='label' is the same as --text_field or --label_field"),
        ("run_id", "../escape", "--run_id='../escape' must be 1-128 letters"),
        ("output_uri", "s3://raw/datasets/curated", "lies inside --input_uri='s3://raw/datasets'"),
    ],
)
def test_rejects_bad_value_naming_argument_and_allowed_values(name: str, value: str, message: str) -> None:
    with pytest.raises(JobArgumentError) as error:
        _parse(**{name: value})
    assert message in str(error.value)


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf-8-sig", "cp1252", "latin-1", "shift_jis", "gb18030"])
def test_accepts_ascii_compatible_encodings(encoding: str) -> None:
    assert _parse(encoding=encoding).encoding == encoding


def test_labels_accept_a_comma_list_or_a_json_array_in_order() -> None:
    assert _parse(labels=" b , a ").labels == ("b", "a")
    assert _parse(labels='["small, talk", "food"]').labels == ("small, talk", "food")


def test_glue_runs_need_s3_uris() -> None:
    with pytest.raises(JobArgumentError, match="must be an s3:// URI on Glue"):
        parse_job_arguments({"input_uri": "/data/raw", "output_uri": "s3://c/d"}, local=False)


def test_local_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse_job_arguments({"input_uri": "raw/", "output_uri": "curated"}, local=True)
    assert (config.input_uri, config.output_uri) == (str(tmp_path / "raw"), str(tmp_path / "curated"))


def test_required_and_unknown_arguments_are_named() -> None:
    with pytest.raises(JobArgumentError, match="--output_uri is required"):
        parse_job_arguments({"input_uri": "s3://a/b"}, local=False)
    with pytest.raises(JobArgumentError, match=r"unknown job arguments \['txt_field'\]"):
        parse_job_arguments({"input_uri": "s3://a/b", "output_uri": "s3://c/d", "txt_field": "x"}, local=False)


def test_local_command_line_parses_like_glue_arguments() -> None:
    argv = ["--local", "true", "--input_uri", "in", "--output_uri", "out", "--input_format", "csv", "--seed", "7"]
    assert prepare_dataset.is_local_run(argv)
    assert parse_local_argv(argv) == {"input_uri": "in", "output_uri": "out", "input_format": "csv", "seed": "7"}
    assert not prepare_dataset.is_local_run(["--input_uri", "s3://a/b", "--JOB_NAME", "prepare"])
    assert prepare_dataset.is_local_run(["--local=TRUE"])
