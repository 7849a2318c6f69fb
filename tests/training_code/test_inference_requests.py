"""inference.py's request parsing and error answers, without a model: JSON, JSON Lines, encodings, stable codes."""

from __future__ import annotations

import json
from types import ModuleType

import pytest


def parse_error(inference_module: ModuleType, body: bytes, content_type: str) -> tuple[int, dict[str, str]]:
    with pytest.raises(inference_module.InvalidRequestError) as caught:
        inference_module.parse_request(body, content_type)
    return caught.value.status_code, json.loads(caught.value.body)


def test_error_body_is_exactly_code_and_message(inference_module: ModuleType) -> None:
    status, body = parse_error(inference_module, b'{"inputs": ["goal"', "application/json")
    assert status == 400
    assert set(body) == {"error", "message"}
    assert body["error"] == "MalformedJSON"
    assert body["message"].startswith("body is not valid JSON")


def test_every_error_code_has_a_client_error_status(inference_module: ModuleType) -> None:
    assert inference_module.ERROR_STATUS
    assert all(400 <= status < 500 for status in inference_module.ERROR_STATUS.values())


@pytest.mark.parametrize("content_type", ["application/json", "application/jsonlines"])
def test_body_that_is_not_utf8_is_a_400_naming_the_byte(inference_module: ModuleType, content_type: str) -> None:
    status, body = parse_error(inference_module, b'{"inputs": "caf\xe9"}', content_type)
    assert (status, body["error"]) == (400, "InvalidEncoding")
    assert "byte 15" in body["message"]


def test_the_toolkit_is_told_not_to_decode_bodies_itself(inference_module: ModuleType) -> None:
    from sagemaker_inference import content_types

    # The generic toolkit decodes these types before any hook runs; a non-UTF-8 body would be its 500, not our 400.
    assert content_types.JSON not in content_types.UTF8_TYPES


def test_empty_body_is_a_400(inference_module: ModuleType) -> None:
    assert parse_error(inference_module, b"", "application/json") == (
        400,
        {"error": "MalformedJSON", "message": 'body is empty: send {"inputs": ...}'},
    )
    assert parse_error(inference_module, None, "application/jsonlines")[1]["error"] == "EmptyInputs"


@pytest.mark.parametrize("content_type", ["application/jsonlines", "application/x-jsonlines; charset=utf-8"])
def test_json_lines_give_one_text_per_line_in_order_with_ids_where_given(
    inference_module: ModuleType, content_type: str
) -> None:
    lines = [
        json.dumps({"id": "a", "text": "pasta", "label": "food"}),
        json.dumps({"inputs": "rain"}),
        # A raw U+2028 inside a JSON string is legal; str.splitlines would cut this record in two.
        '{"id": null, "text": "goal\u2028match"}',
    ]
    body = ("\r\n".join(lines) + "\r\n\n").encode()
    request = inference_module.parse_request(body, content_type)
    assert request["texts"] == ["pasta", "rain", "goal\u2028match"]
    assert request["ids"] == ["a", inference_module.MISSING, None]
    assert request["top_k"] == 0


@pytest.mark.parametrize(
    ("second_line", "code", "says"),
    [
        ('{"inputs": "rain"', "MalformedJSON", "line 2 is not valid JSON"),
        ('["rain"]', "MissingInputs", "line 2 must be a JSON object"),
        ('{"id": "x"}', "MissingInputs", 'exactly one of "inputs" or "text"'),
        ('{"inputs": "rain", "text": "snow"}', "MissingInputs", 'exactly one of "inputs" or "text"'),
        ('{"inputs": ["rain", "snow"]}', "InvalidInputs", 'line 2: "inputs" is a list'),
        ('{"text": 3}', "InvalidInputs", 'line 2: "text" is a int'),
        ('{"text": "  "}', "EmptyInputs", 'line 2: "text" is empty'),
        ("   ", "EmptyInputs", "line 2 is blank"),
    ],
)
def test_bad_json_line_is_a_400_naming_the_line(
    inference_module: ModuleType, second_line: str, code: str, says: str
) -> None:
    body = "\n".join(['{"text": "pasta"}', second_line, '{"text": "goal"}']).encode()
    status, error = parse_error(inference_module, body, "application/jsonlines")
    assert (status, error["error"]) == (400, code)
    assert says in error["message"]


def test_json_lines_count_against_the_input_cap(inference_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERENCE_MAX_INPUTS", "2")
    body = "\n".join(['{"text": "pasta"}'] * 3).encode()
    status, error = parse_error(inference_module, body, "application/jsonlines")
    assert (status, error["error"]) == (413, "TooManyInputs")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        ("application/jsonlines", "application/jsonlines"),
        ("application/x-jsonlines", "application/jsonlines"),
    ],
)
def test_accepted_response_types(inference_module: ModuleType, accept: str | None, expected: str) -> None:
    assert inference_module.response_media_type(accept) == expected


def test_json_lines_response_has_one_line_per_result_and_no_final_newline(inference_module: ModuleType) -> None:
    results = [{"label": "food", "score": 0.9, "id": "a"}, {"label": "sports", "score": 0.8}]
    answer = inference_module.format_response(results, "application/jsonlines")
    # AssembleWith: Line adds the newline after each response; a final one here would read as an empty record.
    assert not answer.endswith("\n")
    assert [json.loads(line) for line in answer.split("\n")] == results
    assert json.loads(inference_module.format_response(results, "application/json")) == results


def test_unsupported_accept_is_a_406(inference_module: ModuleType) -> None:
    with pytest.raises(inference_module.InvalidRequestError) as caught:
        inference_module.response_media_type("text/csv")
    assert caught.value.status_code == 406
    assert json.loads(caught.value.body)["error"] == "NotAcceptable"
