"""Training throughput: training_code/train.py's loop against transformers.Trainer with default arguments.

Both train the same randomly initialised BERT on the same synthetic texts (lengths spread like real sentences), with
the same batch size, maximum sequence length and number of samples; runs are interleaved (ours, Trainer, ours, ...)
so machine load hits both alike, and the median of the rounds is reported.

CPU (the default here): a small BERT; goal >= 1.3x samples/s.

    OMP_NUM_THREADS=1 python scripts/bench_training_throughput.py

GPU: the same comparison, then the model FLOPs utilisation (MFU) of our loop for BERT-base at sequence length 128 in
bf16 (goal >= 45%). Peak bf16 dense FLOP/s comes from the device name, or --peak_tflops.

    python scripts/bench_training_throughput.py --mfu_steps 200
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "training_code"))

import train as our_train  # noqa: E402  (training_code/ is not a package; it runs as scripts in the containers)
from nlp_data import encode_examples, read_examples  # noqa: E402

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' datasheets.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 70e12}
LABELS = ["alpha", "beta", "gamma", "delta"]


def parse_args() -> argparse.Namespace:
    """Benchmark flags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (ours + Trainer each).")
    parser.add_argument("--examples", type=int, default=1024, help="Training examples (one epoch per run).")
    parser.add_argument("--batch_size", type=int, default=16, help="Per-device batch size for both.")
    parser.add_argument("--max_seq_length", type=int, default=128, help="Truncation for both.")
    parser.add_argument("--hidden_size", type=int, default=128, help="Small BERT width for the comparison.")
    parser.add_argument("--layers", type=int, default=2, help="Small BERT depth for the comparison.")
    parser.add_argument("--mfu_steps", type=int, default=100, help="GPU only: steps of the BERT-base MFU run.")
    parser.add_argument("--mfu_batch_size", type=int, default=128, help="GPU only: batch size of the MFU run.")
    parser.add_argument("--peak_tflops", type=float, default=0.0, help="GPU peak bf16 TFLOP/s; 0 = from device name.")
    return parser.parse_args()


def synthetic_corpus(count: int, seed: int, max_words: int) -> list[dict[str, Any]]:
    """Sentences of made-up words; lengths follow a long-tailed distribution like chat or review text."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "tu", "sa", "vo", "pe", "qui", "zan", "dor", "fi"]
    words = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(3000)})
    records = []
    for index in range(count):
        length = min(max_words, max(4, int(rng.lognormvariate(3.2, 0.7))))
        label = index % len(LABELS)
        # A label-specific word makes the task learnable, so the loss moves like in real fine-tuning.
        text = " ".join([words[label]] + [rng.choice(words) for _ in range(length - 1)])
        records.append({"id": str(index), "text": text, "label": LABELS[label]})
    return records


def build_base_model(directory: Path, corpus: list[dict[str, Any]], hidden: int, layers: int, max_len: int) -> None:
    """A WordPiece tokenizer trained on the corpus and a randomly initialised BERT of the given size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    texts = [record["text"] for record in corpus]
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=4000, special_tokens=special))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))],
    )
    BertTokenizerFast(tokenizer_object=tokenizer, model_max_length=max_len).save_pretrained(directory)
    heads = max(hidden // 64, 2)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max(512, max_len),
        num_labels=len(LABELS),
    )
    BertForSequenceClassification(config).save_pretrained(directory)


def write_data(directory: Path, corpus: list[dict[str, Any]]) -> Path:
    """The curated layout train.py reads."""
    train_dir = directory / "train"
    train_dir.mkdir(parents=True)
    (train_dir / "part-00000.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n", encoding="utf-8")
    (train_dir / "labels.json").write_text(json.dumps(LABELS), encoding="utf-8")
    return train_dir


def run_ours(work: Path, model_dir: Path, train_dir: Path, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """One epoch with train.py's loop, in this process; returns its train metrics."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    flags = [
        f"--model_name_or_path={model_dir}",
        f"--train_dir={train_dir}",
        f"--model_dir={run_dir / 'model'}",
        f"--output_data_dir={run_dir / 'metrics'}",
        "--checkpoint_dir=",
        "--epochs=1",
        f"--per_device_train_batch_size={args.batch_size}",
        f"--max_seq_length={args.max_seq_length}",
        "--logging_steps=1000000",
        *extra,
    ]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runtime = our_train.Runtime(rank=0, local_rank=0, world_size=1, device=device)
    return dict(our_train.train(our_train.parse_args(flags), runtime)["train"])


def run_trainer(work: Path, model_dir: Path, train_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One epoch with transformers.Trainer and its default arguments (only the workload and I/O are set)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = read_examples(train_dir, LABELS, "train")
    encoded = encode_examples(tokenizer, examples, args.max_seq_length)
    dataset = [
        {"input_ids": ids, "labels": label} for ids, label in zip(encoded.input_ids, encoded.labels, strict=True)
    ]
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(LABELS))
    training_args = TrainingArguments(
        output_dir=str(Path(tempfile.mkdtemp(dir=work))),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_strategy="no",
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, processing_class=tokenizer)
    output = trainer.train()
    samples = len(dataset)
    tokens = sum(len(ids) for ids in encoded.input_ids)
    runtime = output.metrics["train_runtime"]
    return {"samples_per_s": samples / runtime, "tokens_per_s": tokens / runtime, "runtime_s": runtime}


def measure_mfu(work: Path, args: argparse.Namespace) -> None:
    """BERT-base, every sequence exactly 128 tokens, bf16, fused AdamW, torch.compile: achieved vs peak FLOP/s."""
    from transformers import BertConfig

    name = torch.cuda.get_device_name()
    peak = args.peak_tflops * 1e12 or next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), 0.0)
    if not peak:
        print(f"MFU: unknown peak for {name!r}; pass --peak_tflops")
        return
    seq = 128
    corpus = synthetic_corpus(args.mfu_batch_size * args.mfu_steps, seed=2, max_words=64)
    for record in corpus:
        # Long enough that truncation makes every sequence exactly 128 tokens: MFU then needs no padding caveat.
        words = record["text"].split()
        record["text"] = " ".join((words * (200 // len(words) + 1))[:200])
    model_dir = work / "bert-base"
    build_base_model(model_dir, corpus[:2000], hidden=768, layers=12, max_len=seq)
    train_dir = write_data(work / "mfu-data", corpus)
    mfu_args = argparse.Namespace(**{**vars(args), "batch_size": args.mfu_batch_size, "max_seq_length": seq})
    # The first run compiles (and fills torch.compile's caches); the second, measured run reuses the compiled code.
    for steps, label in ((10, "warm-up"), (args.mfu_steps, "measured")):
        flags = ("--bf16=true", "--torch_compile=true", f"--max_steps={steps}", "--warmup_ratio=0")
        result = run_ours(work, model_dir, train_dir, mfu_args, *flags)
        print(f"MFU {label} run, {steps} steps: {result['runtime_s']:.1f} s", flush=True)
    samples_per_s = float(result["samples_per_s"])
    config = BertConfig()
    layers, hidden = config.num_hidden_layers, config.hidden_size
    # Non-embedding parameters: 12 h^2 per layer (attention 4 h^2, feed-forward 8 h^2); embeddings do no matmul work.
    matmul_params = layers * 12 * hidden * hidden
    # Training = forward + backward = 3 x forward; forward = 2 FLOPs per parameter per token plus attention scores
    # and their weighted sum (2 x 2 x seq x hidden per layer per token).
    flops_per_token = 3 * (2 * matmul_params + 4 * layers * seq * hidden)
    achieved = samples_per_s * seq * flops_per_token
    print(
        f"MFU BERT-base seq {seq} bf16 on {name}: {samples_per_s:.0f} samples/s, "
        f"{achieved / 1e12:.1f} TFLOP/s of {peak / 1e12:.0f} peak = "
        f"{100 * achieved / peak:.1f}% (goal >= 45%)"
    )


def main() -> int:
    """Interleave the two loops, print median throughput and the ratio; on a GPU also the MFU run."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    args = parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch_size}, "
        f"max length {args.max_seq_length}, {args.examples} examples, BERT {args.layers}x{args.hidden_size}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        corpus = synthetic_corpus(args.examples, seed=1, max_words=args.max_seq_length)
        model_dir = work / "small-bert"
        build_base_model(model_dir, corpus, args.hidden_size, args.layers, args.max_seq_length)
        train_dir = write_data(work / "data", corpus)
        ours, theirs = [], []
        for round_index in range(args.rounds):
            ours.append(run_ours(work, model_dir, train_dir, args))
            theirs.append(run_trainer(work, model_dir, train_dir, args))
            print(
                f"round {round_index + 1}/{args.rounds}: ours {ours[-1]['samples_per_s']:.1f} samples/s, "
                f"Trainer {theirs[-1]['samples_per_s']:.1f} samples/s",
                flush=True,
            )
        ours_samples = statistics.median(r["samples_per_s"] for r in ours)
        ours_tokens = statistics.median(r["tokens_per_s"] for r in ours)
        their_samples = statistics.median(r["samples_per_s"] for r in theirs)
        their_tokens = statistics.median(r["tokens_per_s"] for r in theirs)
        print(f"ours:    {ours_samples:8.1f} samples/s {ours_tokens:10.0f} non-padding tokens/s")
        print(f"Trainer: {their_samples:8.1f} samples/s {their_tokens:10.0f} non-padding tokens/s")
        ratio = ours_samples / their_samples
        print(f"ratio (ours / Trainer, samples/s): {ratio:.2f}x (goal >= 1.3x)")
        if device == "cuda":
            measure_mfu(work, args)
    return 0 if math.isfinite(ratio) else 1


if __name__ == "__main__":
    sys.exit(main())
