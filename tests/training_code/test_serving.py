"""The trained model directory served by the real sagemaker-inference toolkit and multi-model-server over HTTP.

The server is the session's one multi-model-server (tests/training_code/model_server.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.training_code.model_server import MAX_INPUTS, Server

pytestmark = pytest.mark.slow


def test_ping_answers_200(server: Server) -> None:
    assert server.request("/ping").status == 200


def test_single_text_gets_one_label_and_score(server: Server) -> None:
    response = server.invoke({"inputs": "the striker scored a goal and the team won the match"})
    assert response.status == 200, response.body
    [result] = response.json()
    assert result["label"] == "sports"
    assert 0.34 < result["score"] <= 1.0
    assert result["truncated"] is False


def test_list_of_texts_gets_results_in_request_order(server: Server) -> None:
    texts = [
        "pasta with cheese and bread",
        "a storm with rain and snow in the forecast today",
        "the referee and the coach",
    ]
    response = server.invoke({"inputs": texts})
    assert response.status == 200, response.body
    assert [r["label"] for r in response.json()] == ["food", "weather", "sports"]


def test_top_k_lists_best_labels_in_order(server: Server) -> None:
    response = server.invoke({"inputs": ["sunny and humid"], "parameters": {"top_k": 2}})
    [result] = response.json()
    assert result["top_k"][0]["label"] == result["label"] == "weather"
    assert len(result["top_k"]) == 2
    assert result["top_k"][0]["score"] >= result["top_k"][1]["score"]


def test_text_longer_than_model_limit_is_truncated_and_says_so(server: Server) -> None:
    response = server.invoke({"inputs": ["soup " * 500, "soup"]})
    assert response.status == 200, response.body
    assert [r["truncated"] for r in response.json()] == [True, False]


def test_charset_parameter_in_content_type_is_accepted(server: Server) -> None:
    response = server.invoke({"inputs": "bake bread"}, content_type="application/json; charset=utf-8")
    assert response.status == 200, response.body


@pytest.mark.parametrize(
    ("payload", "content_type", "accept", "status", "error_type"),
    [
        ({"inputs": "goal"}, "text/plain", None, 415, "UnsupportedMediaType"),
        (b'{"inputs": ["goal"', "application/json", None, 400, "MalformedJSON"),
        ({"text": "goal"}, "application/json", None, 400, "MissingInputs"),
        (["goal"], "application/json", None, 400, "MissingInputs"),
        ({"inputs": []}, "application/json", None, 400, "EmptyInputs"),
        ({"inputs": ""}, "application/json", None, 400, "EmptyInputs"),
        ({"inputs": ["goal", 3]}, "application/json", None, 400, "InvalidInputs"),
        ({"inputs": {"text": "goal"}}, "application/json", None, 400, "InvalidInputs"),
        ({"inputs": ["goal"] * (MAX_INPUTS + 1)}, "application/json", None, 413, "TooManyInputs"),
        ({"inputs": "goal", "parameters": {"top_k": "2"}}, "application/json", None, 400, "InvalidParameters"),
        ({"inputs": "goal"}, "application/json", "text/csv", 406, "NotAcceptable"),
        # Exactly application/json is the type the toolkit used to decode itself, before our hook: a 500.
        (b'{"inputs": "caf\xe9"}', "application/json", None, 400, "InvalidEncoding"),
        (b'{"inputs": "caf\xe9"}', "application/json; charset=utf-8", None, 400, "InvalidEncoding"),
        # text/csv was decoded by the toolkit too: a body that is not UTF-8 was a 500, not the 415 it deserves.
        (b"caf\xe9", "text/csv", None, 415, "UnsupportedMediaType"),
        (b"", "application/json", None, 400, "MalformedJSON"),
        (b'{"text": "pasta"}\n{"text": 3}\n', "application/jsonlines", None, 400, "InvalidInputs"),
    ],
    ids=[
        "wrong-content-type",
        "malformed-json",
        "missing-inputs",
        "not-an-object",
        "empty-list",
        "empty-string",
        "non-string-item",
        "inputs-not-list",
        "too-many-inputs",
        "bad-top-k",
        "unsupported-accept",
        "not-utf8-json",
        "not-utf8-json-charset",
        "not-utf8-csv",
        "empty-body",
        "bad-json-line",
    ],
)
def test_bad_request_gets_4xx_with_json_error(
    server: Server, payload: Any, content_type: str, accept: str | None, status: int, error_type: str
) -> None:
    response = server.invoke(payload, content_type=content_type, accept=accept)
    assert response.status == status, response.body
    assert response.error()["error"] == error_type


def test_server_still_answers_after_bad_requests(server: Server) -> None:
    server.invoke(b"{", "application/json")
    assert server.invoke({"inputs": "rain"}).status == 200


def test_batch_transform_mini_batch_gets_one_json_line_per_record_in_order(server: Server) -> None:
    # What a batch transform job with SplitType Line and BatchStrategy MultiRecord sends: records joined by newlines.
    records = [
        {"id": "c-1", "text": "pasta with cheese and bread", "label": "food"},
        {"inputs": "a storm with rain and snow in the forecast today"},
        {"id": 3, "text": "the referee and the coach"},
        {"id": "c-4", "text": "sunny and humid"},
    ]
    body = ("\n".join(json.dumps(record) for record in records) + "\n").encode()
    response = server.invoke(body, content_type="application/jsonlines", accept="application/jsonlines")
    assert response.status == 200, response.body
    results = response.json_lines()
    assert [r["label"] for r in results] == ["food", "weather", "sports", "weather"]
    assert [r.get("id", "-") for r in results] == ["c-1", "-", 3, "c-4"]
    assert all(0.34 < r["score"] <= 1.0 for r in results)


def test_x_jsonlines_content_type_is_accepted_too(server: Server) -> None:
    response = server.invoke(b'{"text": "bake bread"}', "application/x-jsonlines", accept="application/x-jsonlines")
    assert response.status == 200, response.body
    [result] = response.json_lines()
    assert result["label"] == "food"


def test_bad_json_line_error_names_the_line(server: Server) -> None:
    body = b'{"text": "pasta"}\n{"text": "rain"}\n{"text": "goal"\n'
    response = server.invoke(body, content_type="application/jsonlines", accept="application/jsonlines")
    assert response.status == 400, response.body
    error = response.error()
    assert error["error"] == "MalformedJSON"
    assert error["message"].startswith("line 3 ")
