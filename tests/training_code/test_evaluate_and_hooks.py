"""evaluate.py on the trained model (folder and model.tar.gz), and the inference hooks called directly."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.training_code.harness_support import LABELS, CuratedData, HarnessRun, write_split

pytestmark = pytest.mark.slow


def run_evaluate(evaluate_module: ModuleType, model_dir: Path, test_dir: Path, output: Path) -> int:
    return int(evaluate_module.main([f"--model_dir={model_dir}", f"--test_dir={test_dir}", f"--output_dir={output}"]))


def test_evaluation_json_matches_pipeline_contract_and_training_metrics(
    evaluate_module: ModuleType, harness_training: HarnessRun, curated_data: CuratedData, tmp_path: Path
) -> None:
    assert run_evaluate(evaluate_module, harness_training.model_dir, curated_data.test, tmp_path) == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    trained = json.loads((harness_training.output_dir / "data" / "metrics.json").read_text())["test"]
    assert report["metrics"]["accuracy"]["value"] == pytest.approx(trained["accuracy"])
    assert report["metrics"]["macro_f1"]["value"] == pytest.approx(trained["macro_f1"])
    assert report["num_examples"] == 60
    assert set(report["per_label"]) == set(LABELS)
    assert {"precision", "recall", "f1", "support"} <= set(report["per_label"]["food"])
    matrix = report["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == 60
    assert report["confusion_matrix"]["labels"] == LABELS


def test_evaluate_accepts_the_training_jobs_model_tar_gz(
    evaluate_module: ModuleType, harness_training: HarnessRun, curated_data: CuratedData, tmp_path: Path
) -> None:
    archive_dir = tmp_path / "model-artifact"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "model.tar.gz", "w:gz") as tar:
        for path in harness_training.model_dir.iterdir():
            tar.add(path, arcname=path.name)
    assert run_evaluate(evaluate_module, archive_dir, curated_data.test, tmp_path / "packed") == 0
    assert run_evaluate(evaluate_module, harness_training.model_dir, curated_data.test, tmp_path / "unpacked") == 0
    packed = json.loads((tmp_path / "packed" / "evaluation.json").read_text())
    unpacked = json.loads((tmp_path / "unpacked" / "evaluation.json").read_text())
    # The same weights and tokenizer must give the same report: a range check would pass for a model that failed
    # to load its trained weights from the archive and fell back to a fresh head.
    assert packed["num_examples"] == unpacked["num_examples"] == 60
    assert packed["confusion_matrix"] == unpacked["confusion_matrix"]
    for name in ("accuracy", "macro_f1", "loss"):
        assert packed["metrics"][name]["value"] == pytest.approx(unpacked["metrics"][name]["value"], abs=1e-6)


def test_evaluate_fails_without_writing_a_report_when_test_data_is_bad(
    evaluate_module: ModuleType, harness_training: HarnessRun, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_split(tmp_path / "test", [{"id": "1", "text": "rain", "label": "politics"}])
    assert run_evaluate(evaluate_module, harness_training.model_dir, tmp_path / "test", tmp_path / "out") == 1
    assert "label 'politics' is not in labels.json" in caplog.text
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_predict_returns_results_in_request_order_whatever_the_batching(
    inference_module: ModuleType, harness_training: HarnessRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERENCE_BATCH_SIZE", "2")
    loaded = inference_module.model_fn(str(harness_training.model_dir))
    texts = ["the long forecast says rain and storm and wind all week long", "pasta", "goal", "cheese soup and bread"]
    request = inference_module.parse_request(json.dumps({"inputs": texts}).encode(), "application/json")
    batched = inference_module.predict(request, loaded)
    one_by_one = [inference_module.predict({"texts": [text], "top_k": 0}, loaded)[0] for text in texts]
    assert [r["label"] for r in batched] == [r["label"] for r in one_by_one]
    for together, alone in zip(batched, one_by_one, strict=True):
        assert together["score"] == pytest.approx(alone["score"], abs=1e-5)
    answer = inference_module.transform_fn(loaded, json.dumps({"inputs": texts}).encode(), "application/json", "*/*")
    assert [r["label"] for r in json.loads(answer)] == [r["label"] for r in batched]


def test_transform_fn_answers_json_lines_one_prediction_per_line_with_ids(
    inference_module: ModuleType, harness_training: HarnessRun
) -> None:
    loaded = inference_module.model_fn(str(harness_training.model_dir))
    lines = [
        {"id": "r-1", "text": "pasta with cheese", "label": "food"},
        {"inputs": "storm and rain"},
        {"id": 7, "text": "the referee and the coach"},
    ]
    body = ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
    answer = inference_module.transform_fn(loaded, body, "application/jsonlines", "application/jsonlines")
    results = [json.loads(line) for line in answer.split("\n")]
    assert [r["label"] for r in results] == ["food", "weather", "sports"]
    assert [r.get("id") for r in results] == ["r-1", None, 7]
    assert "id" not in results[1]
    assert all(0.0 < r["score"] <= 1.0 for r in results)


class FakeContext:
    """The one method of the model server's context that transform_fn uses."""

    def __init__(self) -> None:
        self.status: tuple[int, str] | None = None

    def set_response_status(self, code: int = 200, phrase: str = "") -> None:
        self.status = (code, phrase)


def test_transform_fn_sets_the_4xx_itself_and_answers_exactly_one_json_object(inference_module: ModuleType) -> None:
    context = FakeContext()
    # The model is never reached: the request fails validation first.
    answer = inference_module.transform_fn(None, b'{"inputs": 5}', "application/json", "application/json", context)
    assert context.status == (400, "InvalidInputs")
    assert set(json.loads(answer)) == {"error", "message"}
    assert json.loads(answer)["error"] == "InvalidInputs"


def test_without_a_context_the_error_is_raised_as_the_toolkits_class_with_the_json_body(
    inference_module: ModuleType,
) -> None:
    from sagemaker_inference.errors import GenericInferenceToolkitError

    with pytest.raises(GenericInferenceToolkitError) as caught:
        inference_module.transform_fn(None, b'{"inputs": 5}', "application/json", "application/json")
    assert caught.value.status_code == 400
    assert json.loads(str(caught.value)) == json.loads(caught.value.message)
    assert json.loads(str(caught.value))["error"] == "InvalidInputs"


def test_length_batches_keep_long_texts_away_from_short_ones_and_respect_the_caps(inference_module: ModuleType) -> None:
    lengths = [5] * 40 + [300, 377]
    order = list(range(len(lengths)))
    batches = inference_module._length_batches(order, lengths, 16, 40)
    assert [i for batch in batches for i in batch] == order
    assert all(len(batch) <= 16 for batch in batches)
    long_batches = [batch for batch in batches if 40 in batch or 41 in batch]
    assert all(set(batch) <= {40, 41} for batch in long_batches)
    many_long = inference_module._length_batches(list(range(64)), [512] * 64, 64, 40)
    assert all(len(batch) * 512 <= inference_module.MAX_BATCH_TOKENS for batch in many_long)
