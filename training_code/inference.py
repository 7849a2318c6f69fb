"""Serving hooks for the text classifier: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

``train.py`` copies this file into ``<model>/code/``; both the generic ``sagemaker-inference`` toolkit and the
Hugging Face inference toolkit import it from there. It depends only on what those containers ship (torch,
transformers), so the model artifact needs no ``code/requirements.txt``.

Request (``application/json``): ``{"inputs": "text" | ["text", ...], "parameters": {"top_k": 2}}`` (parameters
optional). Response: a JSON list with one ``{"label", "score", "truncated"}`` per input, plus ``"top_k"`` (the k best
``{"label", "score"}``) when asked. ``truncated`` says the text was longer than the model accepts and was cut.

Bad requests raise ``InvalidRequestError``, a ``GenericInferenceToolkitError`` with a 4xx status and a JSON message
``{"error": {"code", "type", "message"}}``, so the toolkit answers 4xx instead of 500.

Settings (environment variables of the model): ``INFERENCE_MAX_INPUTS`` (default 256) caps the texts per request;
``INFERENCE_BATCH_SIZE`` (default 64) is the largest forward-pass batch.
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
DEFAULT_MAX_INPUTS = 256
DEFAULT_BATCH_SIZE = 64
# Caps padded tokens per forward pass so a batch of long texts cannot exhaust memory (attention grows with length^2).
MAX_BATCH_TOKENS = 16384


class InvalidRequestError(GenericInferenceToolkitError):
    """A client error: the toolkit turns it into an HTTP 4xx whose body starts with this JSON message."""

    def __init__(self, status_code: int, error_type: str, message: str) -> None:
        body = json.dumps({"error": {"code": status_code, "type": error_type, "message": message}})
        super().__init__(status_code, body, error_type)

    def __str__(self) -> str:
        # The Hugging Face toolkit answers with str(error); make that the JSON body, not the args tuple.
        return str(self.message)


@dataclass
class LoadedModel:
    """What model_fn returns and predict_fn uses."""

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


def input_fn(input_data: str | bytes, content_type: str) -> dict[str, Any]:
    """Parse and validate the request; every problem becomes a 4xx InvalidRequestError."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != JSON_CONTENT_TYPE:
        raise InvalidRequestError(
            415, "UnsupportedMediaType", f"content type {content_type!r} is not supported: send {JSON_CONTENT_TYPE}"
        )
    if isinstance(input_data, (bytes, bytearray)):
        try:
            input_data = bytes(input_data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidRequestError(400, "InvalidEncoding", f"body is not UTF-8 (byte {error.start})") from None
    try:
        payload = json.loads(input_data)
    except json.JSONDecodeError as error:
        raise InvalidRequestError(400, "MalformedJSON", f"body is not valid JSON: {error}") from None
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise InvalidRequestError(400, "MissingInputs", 'body must be a JSON object with "inputs": a string or a list')
    inputs = payload["inputs"]
    single = isinstance(inputs, str)
    texts = [inputs] if single else inputs
    if not isinstance(texts, list):
        raise InvalidRequestError(
            400, "InvalidInputs", f'"inputs" must be a string or a list, got {type(inputs).__name__}'
        )
    if not texts:
        raise InvalidRequestError(400, "EmptyInputs", '"inputs" is an empty list: send at least one text')
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequestError(
                400, "InvalidInputs", f'"inputs"[{index}] is a {type(text).__name__}, expected a string'
            )
        if not text.strip():
            raise InvalidRequestError(400, "EmptyInputs", f'"inputs"[{index}] is empty: send non-blank text')
    max_inputs = _env_int("INFERENCE_MAX_INPUTS", DEFAULT_MAX_INPUTS)
    if len(texts) > max_inputs:
        raise InvalidRequestError(
            413, "TooManyInputs", f'"inputs" has {len(texts)} texts; at most {max_inputs} per request: split it'
        )
    parameters = payload.get("parameters") or {}
    top_k = parameters.get("top_k", 0) if isinstance(parameters, dict) else None
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise InvalidRequestError(
            400, "InvalidParameters", f'"parameters.top_k" must be an integer >= 0, got {top_k!r}'
        )
    return {"texts": texts, "top_k": top_k}


def predict_fn(data: dict[str, Any], loaded: LoadedModel) -> list[dict[str, Any]]:
    """Classify all texts in length-sorted batches (little padding) and return results in request order."""
    texts: list[str] = data["texts"]
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


def output_fn(prediction: list[dict[str, Any]], accept: str) -> str:
    """Serialize to JSON; refuse other media types with 406 rather than answering in a format nobody asked for."""
    media_type = (accept or JSON_CONTENT_TYPE).split(";")[0].strip().lower()
    if media_type not in {JSON_CONTENT_TYPE, "*/*"}:
        raise InvalidRequestError(406, "NotAcceptable", f"accept {accept!r} is not supported: use {JSON_CONTENT_TYPE}")
    # A plain string, not (body, content type): the Hugging Face toolkit does not unpack tuples.
    return json.dumps(prediction)
