"""scripts/demo.py (``make demo``): a small run of every stage, and a failing stage named in the exit.

The run uses the session's synthesized dev assembly (the ``dev`` fixture) instead of its own synth, two
chatterbot-corpus topics with 20 utterances each and one epoch of the tests' tiny two-layer BERT (built on the spot,
tests/training_code/harness_support.py) instead of MiniLM, with the gate at 0 (such a model is not expected to pass
the stage's 0.7): it checks the wiring from raw text to the API's answers, not accuracy; ``make demo`` trains MiniLM
and shows the accuracy at full size.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from scripts import demo
from scripts.local_model_server import model_server_processes
from tests.training_code.harness_support import build_tiny_pretrained

pytestmark = pytest.mark.slow


def prepare_on(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the demo's prepare stage in this process on the session's SparkSession instead of a fresh local Spark:
    the same job ``main`` with the demo's own arguments, without a second JVM start (seconds of the suite's time).
    ``make demo`` runs it as its own process; test_a_stage_process_that_fails_fails_its_stage_with_its_error_line
    covers that path."""
    import prepare_dataset  # tests/conftest.py's spark fixture put glue_jobs/ on the path, as on Glue

    run_process = demo.run_process

    def run(current: demo.Demo, stage: str, command: Any, env: dict[str, str] | None = None) -> str:
        if stage != "prepare":
            return run_process(current, stage, command, env)
        assert list(command[:2]) == [sys.executable, str(demo.GLUE_SCRIPT)]
        code = prepare_dataset.main(list(command[2:]))
        if code != 0:
            raise demo.StageFailed(f"prepare_dataset.main exited {code}")
        return ""

    monkeypatch.setattr(prepare_dataset, "build_local_spark_session", lambda *args, **kwargs: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)
    monkeypatch.setattr(demo, "run_process", run)


@pytest.fixture(scope="module")
def small_run(dev: Any, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo") / "out"
    base_model = build_tiny_pretrained(tmp_path_factory.mktemp("tiny-bert"))
    terminal = io.StringIO()
    flags = ["--out", str(out), "--cdk-out", str(dev.assembly_dir), "--topics", "ai,coding", "--per-topic", "20"]
    flags += ["--epochs", "1", "--accuracy-threshold", "0", "--show", "3", "--base-model", str(base_model)]
    with pytest.MonkeyPatch.context() as monkeypatch:
        prepare_on(spark, monkeypatch)
        code = demo.run(demo.parse_args(flags), terminal)
    return {"code": code, "out": out, "output": terminal.getvalue()}


def test_every_stage_runs_and_the_api_answers_each_test_text(small_run: dict[str, Any]) -> None:
    output, out = small_run["output"], small_run["out"]
    assert small_run["code"] == 0, output
    total = len(demo.STAGES)
    for number, stage in enumerate(demo.STAGES, start=1):
        assert re.search(rf"^\[{number}/{total}\] {stage}: done in \d+\.\d s \(\d+\.\d s elapsed\)", output, re.M)
    summary = json.loads((out / demo.MARKER).read_text(encoding="utf-8"))
    assert summary["status"] == "succeeded"
    assert set(summary["stage_seconds"]) == set(demo.STAGES)
    # The Glue job's report accounts for every raw record; the test split is what the API was asked about.
    report = summary["data_report"]
    assert report["records_in"] == 40 == report["records_written"] + report["duplicates"] + report["quarantined"]
    test_split = demo.read_test_split(out / "curated" / "datasets" / "default" / "runs" / demo.RUN_ID / "test")
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["text"] for p in predictions] == [r["text"] for r in test_split]
    assert [p["expected"] for p in predictions] == [r["label"] for r in test_split]
    assert {p["predicted"] for p in predictions} <= {"ai", "coding"}
    assert all(0.0 <= p["score"] <= 1.0 for p in predictions)
    # The model served is the one the pipeline registered, and the wrapper mapped a bad request to its 400.
    assert summary["model_package_arn"].endswith(":model-package/nlp-dev-models/1")
    assert summary["bad_request"]["status"] == 400 and summary["bad_request"]["error"] == "EmptyInputs"


def test_the_report_prints_the_table_and_the_evaluation(small_run: dict[str, Any]) -> None:
    output = small_run["output"]
    summary = json.loads((small_run["out"] / demo.MARKER).read_text(encoding="utf-8"))
    metrics = summary["evaluation"]["metrics"]
    rows = summary["data_report"]["written_per_split"]["test"]
    assert f"Predictions through POST /classify ({min(3, rows)} of {rows} test texts" in output
    assert re.search(r"^  text +expected +predicted +score$", output, re.M)
    assert f"accuracy {metrics['accuracy']['value']:.3f}   macro F1 {metrics['macro_f1']['value']:.3f}" in output
    assert re.search(r"^  ai +\d\.\d{3} +\d\.\d{3} +\d\.\d{3} +\d+$", output, re.M)
    # The pipeline's own step lines are shown, indented, under the train stage.
    assert re.search(r"^ +\[5/6\] RegisterModel \(RegisterModel\): Succeeded", output, re.M)


def test_servers_are_stopped_after_the_run(small_run: dict[str, Any]) -> None:
    assert model_server_processes(small_run["out"] / "serving" / "mms.properties") == []
    assert not [t for t in threading.enumerate() if t.name == "local-sagemaker-runtime"]


def test_a_failing_stage_exits_non_zero_naming_it(dev: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "raw"
    empty.mkdir()
    flags = ["--out", str(tmp_path / "out"), "--cdk-out", str(dev.assembly_dir), "--raw", str(empty)]
    assert demo.main(flags) == 1
    error = capsys.readouterr().err
    assert f"demo failed at stage 'dataset': --raw {empty} holds no data" in error
    summary = json.loads((tmp_path / "out" / demo.MARKER).read_text(encoding="utf-8"))
    assert (summary["status"], summary["failed_stage"]) == ("failed", "dataset")


def test_refuses_an_output_folder_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("someone's file", encoding="utf-8")
    assert demo.main(["--out", str(tmp_path)]) == 2
    assert "is not empty and no demo wrote it" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").is_file()


def test_a_stage_process_that_fails_fails_its_stage_with_its_error_line(tmp_path: Path) -> None:
    # The path `make demo` takes for the Glue job (the small run above runs the job in this process instead).
    run = demo.Demo(args=demo.parse_args(["--out", str(tmp_path)]), out=tmp_path, terminal=io.StringIO())
    run.logs.mkdir(parents=True)
    script = "import sys; print('starting'); print('ValueError: --input_uri holds no records'); sys.exit(3)"
    with pytest.raises(demo.StageFailed, match=r"ValueError: --input_uri holds no records \(exit status 3, log: "):
        demo.run_process(run, "prepare", [sys.executable, "-c", script])
    assert "starting" in (run.logs / "prepare.log").read_text(encoding="utf-8")
