"""The dataset resolver Lambda: which run to train on, checked complete, and which folder keys the checkpoints."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HANDLER = Path(__file__).resolve().parents[2] / "lambda_handlers" / "resolve_dataset" / "handler.py"


def _load_handler() -> ModuleType:
    # lambda_handlers is not a package: the Lambda runtime imports handler.py as a top-level module.
    spec = importlib.util.spec_from_file_location("resolve_dataset_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


resolver = _load_handler()
DatasetResolutionError = resolver.DatasetResolutionError

BUCKET = "curated-bucket"
RUNS_URI = f"s3://{BUCKET}/datasets/default/runs"
POINTER_URI = f"s3://{BUCKET}/datasets/default/_LATEST"
CHANNELS = ("train/part-0.jsonl", "validation/part-0.jsonl", "test/part-0.jsonl", "labels.json")


class FakeStore:
    """An in-memory S3: objects by (bucket, key); records what was read."""

    def __init__(self, objects: dict[tuple[str, str], str] | None = None) -> None:
        self.objects = dict(objects or {})
        self.reads: list[tuple[str, str]] = []

    def read_text(self, bucket: str, key: str) -> str | None:
        self.reads.append((bucket, key))
        return self.objects.get((bucket, key))

    def has_prefix(self, bucket: str, prefix: str) -> bool:
        return any(b == bucket and k.startswith(prefix) for b, k in self.objects)

    def add_run(self, run_id: str, channels: tuple[str, ...] = CHANNELS, bucket: str = BUCKET) -> str:
        for channel in channels:
            self.objects[(bucket, f"datasets/default/runs/{run_id}/{channel}")] = "{}"
        return f"s3://{bucket}/datasets/default/runs/{run_id}"

    def point_latest_at(self, text: str) -> None:
        self.objects[(BUCKET, "datasets/default/_LATEST")] = text


def _event(**overrides: Any) -> dict[str, Any]:
    event = {
        "input_prefix": "latest",
        "data_run_id": "",
        "runs_uri": RUNS_URI,
        "pointer_uri": POINTER_URI,
        "run_id": "",
        "execution_id": "abc123def456",
    }
    event.update(overrides)
    return event


def test_explicit_prefix_is_returned_without_its_trailing_slash_and_the_pointer_is_not_read() -> None:
    store = FakeStore()
    prefix = store.add_run("r1")
    answer = resolver.resolve(_event(input_prefix=f"{prefix}/"), store)
    assert answer["RunPrefix"] == prefix
    assert store.reads == []


def test_latest_reads_the_pointer_and_strips_the_slash() -> None:
    store = FakeStore()
    prefix = store.add_run("r1")
    store.point_latest_at(json.dumps({"run_prefix": f"{prefix}/"}))
    answer = resolver.resolve(_event(input_prefix="latest"), store)
    assert answer == {"RunPrefix": f"s3://{BUCKET}/datasets/default/runs/r1", "RunId": "abc123def456"}
    assert store.reads == [(BUCKET, "datasets/default/_LATEST")]


def test_latest_tolerates_surrounding_whitespace_and_a_trailing_slash() -> None:
    store = FakeStore()
    prefix = store.add_run("r1")
    store.point_latest_at(json.dumps({"run_prefix": prefix}))
    assert resolver.resolve(_event(input_prefix=" latest/ "), store)["RunPrefix"] == prefix


def test_data_run_id_wins_over_input_prefix_and_is_built_from_runs_uri() -> None:
    store = FakeStore()
    store.add_run("r1")
    wanted = store.add_run("glue-run-42")
    store.point_latest_at(json.dumps({"run_prefix": f"{RUNS_URI}/r1/"}))
    answer = resolver.resolve(_event(input_prefix="latest", data_run_id="glue-run-42", runs_uri=f"{RUNS_URI}/"), store)
    assert answer["RunPrefix"] == wanted
    assert store.reads == []


def test_missing_pointer_names_the_pointer_uri_and_how_to_fix_it() -> None:
    with pytest.raises(DatasetResolutionError) as raised:
        resolver.resolve(_event(input_prefix="latest"), FakeStore())
    message = str(raised.value)
    assert f"{POINTER_URI} does not exist" in message
    assert "run the data preparation job first" in message
    assert "InputPrefix=s3://" in message


def test_run_lacking_test_and_labels_names_both_missing_channels() -> None:
    store = FakeStore()
    prefix = store.add_run("r1", channels=("train/a.jsonl", "validation/a.jsonl"))
    with pytest.raises(DatasetResolutionError, match=re.escape(f"InputPrefix={prefix!r} lacks test/, labels.json:")):
        resolver.resolve(_event(input_prefix=prefix), store)


def test_channel_check_does_not_accept_a_sibling_run_with_a_longer_name() -> None:
    store = FakeStore()
    store.add_run("r10")
    with pytest.raises(DatasetResolutionError, match=r"lacks train/, validation/, test/, labels\.json"):
        resolver.resolve(_event(input_prefix=f"{RUNS_URI}/r1"), store)


@pytest.mark.parametrize("text", ["not json", "{}", '{"prefix": "s3://x/y"}', "[]", '"s3://curated-bucket/a"'])
def test_bad_pointer_content_names_the_pointer(text: str) -> None:
    store = FakeStore()
    store.point_latest_at(text)
    with pytest.raises(DatasetResolutionError, match=re.escape(f"{POINTER_URI} is not a data preparation pointer")):
        resolver.resolve(_event(input_prefix="latest"), store)


@pytest.mark.parametrize(
    "prefix", ["/datasets/default/runs/r1", "https://curated-bucket/runs/r1", "s3://Bad_Bucket/x", ""]
)
def test_non_s3_prefix_is_rejected_naming_the_value(prefix: str) -> None:
    with pytest.raises(DatasetResolutionError, match=re.escape(f"InputPrefix={prefix!r} is not an s3://")):
        resolver.resolve(_event(input_prefix=prefix), FakeStore())


def test_pointer_naming_a_non_s3_prefix_is_rejected() -> None:
    store = FakeStore()
    store.point_latest_at(json.dumps({"run_prefix": "/local/runs/r1"}))
    with pytest.raises(DatasetResolutionError, match=r"InputPrefix='/local/runs/r1' is not an s3://"):
        resolver.resolve(_event(input_prefix="latest"), store)


def test_bad_pointer_uri_is_rejected_naming_pointer_uri() -> None:
    with pytest.raises(DatasetResolutionError, match=r"pointer_uri='' is not an s3://"):
        resolver.resolve(_event(input_prefix="latest", pointer_uri=""), FakeStore())


def test_given_run_id_wins_over_the_execution_id() -> None:
    store = FakeStore()
    prefix = store.add_run("r1")
    answer = resolver.resolve(_event(input_prefix=prefix, run_id="resume-2024.06_a"), store)
    assert answer["RunId"] == "resume-2024.06_a"


@pytest.mark.parametrize("run_id", ["", "   "])
def test_empty_run_id_falls_back_to_the_execution_id(run_id: str) -> None:
    store = FakeStore()
    prefix = store.add_run("r1")
    assert resolver.resolve(_event(input_prefix=prefix, run_id=run_id), store)["RunId"] == "abc123def456"


@pytest.mark.parametrize("run_id", ["../other-run", "run id", "run/1", "-leading-hyphen", "x" * 129])
def test_run_id_with_invalid_characters_is_rejected_naming_the_value(run_id: str) -> None:
    store = FakeStore()
    prefix = store.add_run("r1")
    with pytest.raises(DatasetResolutionError, match=re.escape(f"RunId={run_id!r}")):
        resolver.resolve(_event(input_prefix=prefix, run_id=run_id), store)


def test_run_id_of_128_characters_is_accepted() -> None:
    assert resolver.checkpoint_run_id("a" * 128, "exec") == "a" * 128
