"""Serving for the text classifier: ``model_fn`` and ``transform_fn``, the two hooks the serving toolkits call.

``train.py`` copies this file into ``<model>/code/``; both the generic ``sagemaker-inference`` toolkit and the
Hugging Face inference toolkit import it from there. It depends only on what those containers ship (torch,
transformers), so the model artifact needs no ``code/requirements.txt``.

Requests:

* ``application/json``: ``{"inputs": "text" | ["text", ...], "parameters": {"top_k": 2}}`` (parameters optional).
* ``application/jsonlines`` (or ``application/x-jsonlines``), what a batch transform job with ``SplitType: Line`` and
  ``BatchStrategy: MultiRecord`` sends: JSON Lines, one object per line, either ``{"inputs": "text"}`` or a curated
  record ``{"id"?, "text", "label"?}`` (the label is ignored).

Response: one ``{"label", "score", "truncated"}`` per text, in request order, plus ``"top_k"`` (the k best
``{"label", "score"}``) when asked and ``"id"`` when a JSON Lines line had one. ``truncated`` says the text was longer
than the model accepts and was cut. ``Accept: application/json`` (also what both toolkits substitute for a missing
Accept or ``*/*``) gives a JSON list; ``Accept: application/jsonlines`` gives one JSON object per line.

A bad request gets a 4xx whose body is exactly one JSON object ``{"error": <stable code>, "message": <text>}``; the
codes are listed in ``ERROR_STATUS``. ``transform_fn`` sets that status itself rather than raising to the toolkit,
because the generic toolkit appends a traceback to the body of every error raised to it. It also decodes the body
itself (see ``_take_raw_bodies``), so a body that is not UTF-8 is a 400, not a 500 inside the toolkit.

Settings (environment variables of the model): ``INFERENCE_MAX_INPUTS`` (default 256) caps the texts per request,
JSON Lines lines included (a batch transform job keeps mini-batches under it with ``MaxPayloadInMB``, or the model
raises it); ``INFERENCE_BATCH_SIZE`` (default 64) is the largest forward-pass batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

try:
    from sagemaker_inference.errors import GenericInferenceToolkitError
except ImportError:  # Outside a serving container (notebooks, benchmarks) the hooks still work and raise this.

    class GenericInferenceToolkitError(Exception):  # type: ignore[no-redef]
        """Stand-in with the toolkit's constructor when sagemaker-inference is not installed."""

        def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None) -> None:
            self.status_code = status_code
            self.message = message or "Invalid Request"
            self.phrase = phrase or self.message
            super().__init__(status_code, self.message, self.phrase)


JSON_CONTENT_TYPE = "application/json"
JSON_LINES_CONTENT_TYPE = "application/jsonlines"
JSON_LINES_CONTENT_TYPES = frozenset({JSON_LINES_CONTENT_TYPE, "application/x-jsonlines"})
DEFAULT_MAX_INPUTS = 256
DEFAULT_BATCH_SIZE = 64
# Caps padded tokens per forward pass so a batch of long texts cannot exhaust memory (attention grows with length^2).
MAX_BATCH_TOKENS = 16384
# Every error code a client can get, with its HTTP status. Clients match on the code, so codes never change meaning.
ERROR_STATUS = {
    "UnsupportedMediaType": 415,
    "InvalidEncoding": 400,
    "MalformedJSON": 400,
    "MissingInputs": 400,
    "InvalidInputs": 400,
    "EmptyInputs": 400,
    "InvalidParameters": 400,
    "TooManyInputs": 413,
    "NotAcceptable": 406,
}
# Marks a text whose JSON Lines line had no "id" (None is an id to echo like any other).
MISSING = object()


def _take_raw_bodies() -> None:
    """Stop the generic toolkit from decoding request bodies before ``transform_fn`` sees them.

    ``sagemaker_inference.transformer.Transformer.transform`` decodes bodies whose content type is exactly one of
    ``content_types.UTF8_TYPES`` (application/json, text/csv) before any hook runs, so a body that is not UTF-8
    raised there and became a 500. The toolkit reads that list on every request; emptying it (rebinding, not
    mutating the list) hands our hook the raw bytes, and ``parse_request`` decodes them and answers 400.
    """
    try:
        from sagemaker_inference import content_types
    except ImportError:
        return
    content_types.UTF8_TYPES = []


_take_raw_bodies()


class InvalidRequestError(GenericInferenceToolkitError):
    """A client error: its ``body`` is the JSON answer ``{"error": code, "message": ...}``, its status a 4xx."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.body = json.dumps({"error": code, "message": message})
        super().__init__(ERROR_STATUS[code], self.body, code)

    def __str__(self) -> str:
        # The Hugging Face toolkit answers with str(error); make that the JSON body, not the args tuple.
        return self.body


@dataclass
class LoadedModel:
    """What model_fn returns and predict uses."""

    model: Any
    tokenizer: Any
    labels: list[str]
    device: torch.device
    max_length: int
    batch_size: int
    overhead_tokens: int


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} must be a positive integer") from None
    if value < 1:
        raise ValueError(f"environment variable {name}={raw!r} must be a positive integer")
    return value


def model_fn(model_dir: str) -> LoadedModel:
    """Load the model and tokenizer saved by train.py, on the GPU in half precision when there is one."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    if device.type == "cuda":
        model = model.to(torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    model.to(device).eval()
    labels_file = Path(model_dir) / "labels.json"
    if labels_file.is_file():
        labels = json.loads(labels_file.read_text(encoding="utf-8"))
    else:
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    # Tokenizers saved without a limit report a huge sentinel; the position embeddings are the real bound.
    position_limit = getattr(model.config, "max_position_embeddings", None) or 512
    max_length = min(tokenizer.model_max_length or position_limit, position_limit)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        device=device,
        max_length=max_length,
        batch_size=_env_int("INFERENCE_BATCH_SIZE", DEFAULT_BATCH_SIZE),
        # Measured with MiniLM on one CPU thread: a forward pass costs about as much as 40 extra tokens. On a GPU the
        # fixed cost dominates much longer, so batching wins over padding up to far larger widths.
        overhead_tokens=2048 if device.type == "cuda" else 40,
    )


def transform_fn(model: LoadedModel, input_data: Any, content_type: str, accept: str, context: Any = None) -> str:
    """The whole request: parse, check Accept, predict, serialize; a client error becomes its 4xx JSON answer.

    Both toolkits pass the serving context as a fifth argument when the hook takes one (the generic toolkit and
    recent Hugging Face toolkits); with it the status is set here and the body is exactly our JSON object. Without a
    context there is no way to set a status, so the error is raised and the toolkit reports it its own way (older
    Hugging Face toolkits: a 400 whose message is our JSON).
    """
    try:
        request = parse_request(input_data, content_type)
        media_type = response_media_type(accept)
        return format_response(predict(request, model), media_type)
    except InvalidRequestError as error:
        if context is None:
            raise
        context.set_response_status(code=error.status_code, phrase=error.code)
        return error.body


def parse_request(body: str | bytes | bytearray | None, content_type: str) -> dict[str, Any]:
    """Decode and validate a request; every problem raises InvalidRequestError with a stable code.

    Returns ``{"texts": [...], "top_k": int, "ids": [id or MISSING per text]}``.
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != JSON_CONTENT_TYPE and media_type not in JSON_LINES_CONTENT_TYPES:
        raise InvalidRequestError(
            "UnsupportedMediaType",
            f"content type {content_type!r} is not supported: send {JSON_CONTENT_TYPE} or {JSON_LINES_CONTENT_TYPE}",
        )
    text = _decode(body)
    request = _parse_json(text) if media_type == JSON_CONTENT_TYPE else _parse_json_lines(text)
    max_inputs = _env_int("INFERENCE_MAX_INPUTS", DEFAULT_MAX_INPUTS)
    if len(request["texts"]) > max_inputs:
        raise InvalidRequestError(
            "TooManyInputs", f"request has {len(request['texts'])} texts; at most {max_inputs} per request: split it"
        )
    return request


def _decode(body: str | bytes | bytearray | None) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequestError("InvalidEncoding", f"body is not UTF-8 (byte {error.start})") from None


def _parse_json(text: str) -> dict[str, Any]:
    if not text.strip():
        raise InvalidRequestError("MalformedJSON", 'body is empty: send {"inputs": ...}')
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRequestError("MalformedJSON", f"body is not valid JSON: {error}") from None
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise InvalidRequestError("MissingInputs", 'body must be a JSON object with "inputs": a string or a list')
    inputs = payload["inputs"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list):
        raise InvalidRequestError("InvalidInputs", f'"inputs" must be a string or a list, got {type(inputs).__name__}')
    if not texts:
        raise InvalidRequestError("EmptyInputs", '"inputs" is an empty list: send at least one text')
    for index, item in enumerate(texts):
        if not isinstance(item, str):
            raise InvalidRequestError(
                "InvalidInputs", f'"inputs"[{index}] is a {type(item).__name__}, expected a string'
            )
        if not item.strip():
            raise InvalidRequestError("EmptyInputs", f'"inputs"[{index}] is empty: send non-blank text')
    parameters = payload.get("parameters") or {}
    top_k = parameters.get("top_k", 0) if isinstance(parameters, dict) else None
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise InvalidRequestError("InvalidParameters", f'"parameters.top_k" must be an integer >= 0, got {top_k!r}')
    return {"texts": texts, "top_k": top_k, "ids": [MISSING] * len(texts)}


def _parse_json_lines(text: str) -> dict[str, Any]:
    """One text per line; errors name the line (1-based, counted in this request's body)."""
    # Split on "\n" only: str.splitlines would also split on U+2028 and other separators JSON strings may hold raw.
    lines = text.split("\n")
    # A mini-batch ends with a newline; trailing blank lines are its end, not records.
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InvalidRequestError("EmptyInputs", "body holds no JSON Lines: send one JSON object per line")
    texts: list[str] = []
    ids: list[Any] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise InvalidRequestError("EmptyInputs", f"line {number} is blank: every line must be a JSON object")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidRequestError("MalformedJSON", f"line {number} is not valid JSON: {error}") from None
        if not isinstance(record, dict) or ("inputs" in record) == ("text" in record):
            raise InvalidRequestError(
                "MissingInputs", f'line {number} must be a JSON object with exactly one of "inputs" or "text"'
            )
        field = "inputs" if "inputs" in record else "text"
        value = record[field]
        if not isinstance(value, str):
            raise InvalidRequestError(
                "InvalidInputs", f'line {number}: "{field}" is a {type(value).__name__}, expected one string per line'
            )
        if not value.strip():
            raise InvalidRequestError("EmptyInputs", f'line {number}: "{field}" is empty: send non-blank text')
        texts.append(value)
        ids.append(record.get("id", MISSING))
    return {"texts": texts, "top_k": 0, "ids": ids}


def response_media_type(accept: str | None) -> str:
    """The media type to answer in; refuse others with 406 rather than answer in a format nobody asked for."""
    media_type = (accept or JSON_CONTENT_TYPE).split(";")[0].strip().lower()
    if media_type in {JSON_CONTENT_TYPE, "*/*"}:
        return JSON_CONTENT_TYPE
    if media_type in JSON_LINES_CONTENT_TYPES:
        return JSON_LINES_CONTENT_TYPE
    raise InvalidRequestError(
        "NotAcceptable", f"accept {accept!r} is not supported: use {JSON_CONTENT_TYPE} or {JSON_LINES_CONTENT_TYPE}"
    )


def format_response(prediction: list[dict[str, Any]], media_type: str) -> str:
    """Serialize: a JSON list, or JSON Lines (one object per input line, in order).

    JSON Lines come without a final newline: a batch transform job with ``AssembleWith: Line`` adds one after each
    response, and a second would read as an empty record.
    """
    # A plain string, not (body, content type): the Hugging Face toolkit does not unpack tuples.
    if media_type == JSON_LINES_CONTENT_TYPE:
        return "\n".join(json.dumps(result) for result in prediction)
    return json.dumps(prediction)


def predict(data: dict[str, Any], loaded: LoadedModel) -> list[dict[str, Any]]:
    """Classify all texts in length-sorted batches (little padding) and return results in request order."""
    texts: list[str] = data["texts"]
    # Callers that classify plain texts (tests, the benchmark) need not pass ids.
    request_ids: list[Any] = data.get("ids") or [MISSING] * len(texts)
    top_k = min(int(data.get("top_k", 0)), len(loaded.labels))
    # One tokenizer pass: overflow rows reveal which texts were cut, the first row of each text is what we use.
    encoded = loaded.tokenizer(
        texts,
        truncation=True,
        max_length=loaded.max_length,
        return_overflowing_tokens=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    first_rows: dict[int, list[int]] = {}
    truncated = [False] * len(texts)
    for ids, sample in zip(encoded["input_ids"], encoded["overflow_to_sample_mapping"], strict=True):
        if sample in first_rows:
            truncated[sample] = True
        else:
            first_rows[sample] = ids
    order = sorted(range(len(texts)), key=lambda i: len(first_rows[i]))
    results: list[dict[str, Any]] = [{} for _ in texts]
    with torch.inference_mode():
        sorted_lengths = [len(first_rows[i]) for i in order]
        for indices in _length_batches(order, sorted_lengths, loaded.batch_size, loaded.overhead_tokens):
            batch = loaded.tokenizer.pad(
                {"input_ids": [first_rows[i] for i in indices]}, pad_to_multiple_of=8, return_tensors="pt"
            ).to(loaded.device)
            probabilities = torch.softmax(loaded.model(**batch).logits.float(), dim=-1).cpu()
            best_scores, best_ids = probabilities.topk(max(top_k, 1), dim=-1)
            for row, index in enumerate(indices):
                result: dict[str, Any] = {
                    "label": loaded.labels[int(best_ids[row, 0])],
                    "score": float(best_scores[row, 0]),
                    "truncated": truncated[index],
                }
                if top_k:
                    result["top_k"] = [
                        {"label": loaded.labels[int(label_id)], "score": float(score)}
                        for score, label_id in zip(best_scores[row], best_ids[row], strict=True)
                    ]
                if request_ids[index] is not MISSING:
                    result["id"] = request_ids[index]
                results[index] = result
    return results


def _length_batches(order: list[int], lengths: list[int], batch_size: int, overhead_tokens: int) -> list[list[int]]:
    """Split length-sorted items into consecutive batches that minimise the estimated forward-pass cost.

    Cost of a batch = a fixed overhead (kernel launches, Python dispatch), expressed in tokens, plus its padded tokens.
    Few large batches amortise the overhead; batches of mixed lengths waste compute on padding. On sorted lengths the
    best split is a small dynamic programme: O(items x batch_size).
    """
    count = len(order)
    padded = [-(-length // 8) * 8 for length in lengths]  # the pad_to_multiple_of=8 width of each item
    best = [0.0] + [float("inf")] * count
    cut = [0] * (count + 1)
    for end in range(1, count + 1):
        width = padded[end - 1]  # sorted ascending: the last item sets the batch's width
        for start in range(max(0, end - batch_size), end):
            size = end - start
            if size > 1 and size * width > MAX_BATCH_TOKENS:
                continue
            cost = best[start] + overhead_tokens + size * width
            if cost < best[end]:
                best[end], cut[end] = cost, start
    batches: list[list[int]] = []
    end = count
    while end > 0:
        batches.append(order[cut[end] : end])
        end = cut[end]
    return batches[::-1]
