"""Fine-tune a Hugging Face transformer for text classification; SageMaker script mode or a laptop.

Local run (CPU):

    python train.py --model_name_or_path ./my-bert --train_dir data/train --validation_dir data/validation \\
        --model_dir out/model --output_data_dir out/metrics --max_steps 200

One machine, several GPUs (SageMaker does this when ``sagemaker_torch_distributed_enabled`` is true):

    torchrun --nproc_per_node 4 train.py ...

Hyperparameters arrive as ``--key value`` flags; paths come from the ``SM_*`` environment with local defaults.
See README.md in this folder for the output layout and the checkpoint/resume behaviour.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from nlp_data import (
    DataValidationError,
    EncodedDataset,
    classification_metrics,
    collate,
    encode_examples,
    find_labels_file,
    length_grouped_batches,
    load_labels,
    predict_dataset,
    read_examples,
    shard_batches,
)
from torch.nn.parallel import DistributedDataParallel
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)

logger = logging.getLogger("train")
HERE = Path(__file__).resolve().parent
CHECKPOINT_PREFIX = "checkpoint-"
# Exit code of a process stopped by SIGTERM; SageMaker sends SIGTERM before reclaiming a spot instance.
INTERRUPTED_EXIT_CODE = 143
# A tokenizer saved without a length limit reports transformers' sentinel (int(1e30)): above this, it declares none.
UNSET_TOKENIZER_LIMIT = 1_000_000


def str_to_bool(value: str) -> bool:
    """Parse the JSON-ish booleans the SageMaker toolkit passes ("true", "False", "1")."""
    lowered = str(value).strip().lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse hyperparameters; unknown flags (the toolkit passes every hyperparameter) are logged and ignored."""
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model_name_or_path",
        default="bert-base-uncased",
        help="Hub id or local folder of the base "
        "model; ignored when a 'pretrained' channel is given (jobs run without network access).",
    )
    model.add_argument("--max_seq_length", type=int, default=128, help="Truncate texts to this many tokens.")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=float, default=3.0, help="Passes over the training data.")
    optim.add_argument("--max_steps", type=int, default=0, help="Optimizer steps; overrides --epochs when > 0.")
    optim.add_argument("--per_device_train_batch_size", type=int, default=32, help="Batch size per GPU/process.")
    optim.add_argument("--per_device_eval_batch_size", type=int, default=64, help="Evaluation batch size.")
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1, help="Micro-batches per optimizer step.")
    optim.add_argument("--learning_rate", type=float, default=5e-5, help="Peak learning rate of AdamW.")
    optim.add_argument("--warmup_ratio", type=float, default=0.06, help="Share of steps with linear warmup.")
    optim.add_argument("--weight_decay", type=float, default=0.01, help="AdamW weight decay (not on bias/LayerNorm).")
    optim.add_argument("--max_grad_norm", type=float, default=1.0, help="Clip gradients to this norm; 0 = off.")
    optim.add_argument("--seed", type=int, default=42, help="Seed for weights of the new head, data order, dropout.")
    speed = parser.add_argument_group("speed")
    speed.add_argument(
        "--bf16",
        default="auto",
        type=str.lower,
        choices=["auto", "true", "false"],
        help="bf16 autocast: auto uses it on GPUs that support it (fp16 with a loss scaler on older "
        "GPUs, fp32 on CPU).",
    )
    speed.add_argument("--torch_compile", type=str_to_bool, default=False, help="Compile the model with torch.compile.")
    run = parser.add_argument_group("progress and checkpoints")
    run.add_argument("--logging_steps", type=int, default=10, help="Log a progress line every N optimizer steps.")
    run.add_argument(
        "--checkpoint_dir",
        default=env.get("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints"),
        help="Where spot checkpoints go (SageMaker syncs /opt/ml/checkpoints with S3); '' disables.",
    )
    run.add_argument("--checkpoint_every_steps", type=int, default=200, help="Checkpoint every N steps; 0 = off.")
    run.add_argument("--keep_checkpoints", type=int, default=2, help="Keep the newest K checkpoints.")
    run.add_argument(
        "--interrupt_after_steps",
        type=int,
        default=0,
        help="Resume drill: stop abruptly after N "
        "steps, without a final checkpoint, as a reclaimed spot instance would; 0 = off.",
    )
    paths = parser.add_argument_group("paths (SageMaker sets them through SM_* variables)")
    paths.add_argument("--model_dir", default=env.get("SM_MODEL_DIR", "model"), help="Where the model is saved.")
    paths.add_argument("--output_data_dir", default=env.get("SM_OUTPUT_DATA_DIR", "output"), help="metrics.json.")
    paths.add_argument("--output_dir", default=env.get("SM_OUTPUT_DIR", ""), help="Failure file folder.")
    paths.add_argument("--train_dir", default=env.get("SM_CHANNEL_TRAIN", "data/train"), help="Training split.")
    paths.add_argument("--validation_dir", default=env.get("SM_CHANNEL_VALIDATION", ""), help="Validation split.")
    paths.add_argument("--test_dir", default=env.get("SM_CHANNEL_TEST", ""), help="Optional test split.")
    paths.add_argument("--pretrained_dir", default=env.get("SM_CHANNEL_PRETRAINED", ""), help="Base model folder.")
    paths.add_argument(
        "--labels_file",
        default="",
        help="labels.json; default: the train channel, the 'labels' channel, then (local runs) beside train_dir.",
    )
    args, unknown = parser.parse_known_args(argv)
    args.ignored_flags = [flag for flag in unknown if flag.startswith("--")]
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_seq_length", "logging_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.max_steps <= 0 and args.epochs <= 0:
        parser.error(f"give --epochs > 0 or --max_steps > 0 (got epochs={args.epochs}, max_steps={args.max_steps})")
    if not 0 <= args.warmup_ratio < 1:
        parser.error(f"--warmup_ratio must be in [0, 1), got {args.warmup_ratio}")
    return args


@dataclass
class Runtime:
    """Where this process sits in the (possibly distributed) job."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_runtime() -> Runtime:
    """Join the process group when torchrun launched us (it sets WORLD_SIZE/RANK/LOCAL_RANK on every node)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    else:
        hosts = json.loads(os.environ.get("SM_HOSTS", "[]"))
        gpus = int(os.environ.get("SM_NUM_GPUS", "0"))
        if len(hosts) > 1 or gpus > 1:
            logger.warning(
                "%d host(s) with %d GPU(s) each, but only this process trains: set the hyperparameter "
                "sagemaker_torch_distributed_enabled=true so the container launches torchrun",
                len(hosts),
                gpus,
            )
    return Runtime(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def choose_precision(flag: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """Return (autocast dtype or None for fp32, whether a loss scaler is needed)."""
    if device.type != "cuda":
        # CPU autocast to bf16 is slower than fp32 on most CPUs without AMX; use it only when asked.
        return (torch.bfloat16, False) if flag == "true" else (None, False)
    if flag == "false":
        return None, False
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    if flag == "true":
        raise SystemExit(f"--bf16 true but {torch.cuda.get_device_name()} has no bf16 support: use --bf16 auto")
    return torch.float16, True


def seed_everything(seed: int) -> None:
    """Seed every generator the run touches."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Capture the generator states that dropout and anything random in the step consume."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what rng_state captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@dataclass
class Progress:
    """Where the run stands; saved in checkpoints so a restarted run continues exactly here."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    loss_sum: float = 0.0
    samples_seen: int = 0
    tokens_seen: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Window:
    """Loss and throughput since the last progress line; the loss stays on the device until it is logged."""

    loss: torch.Tensor
    micro_batches: int = 0
    samples: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def fresh(cls, device: torch.device) -> Window:
        """An empty window starting now."""
        return cls(loss=torch.zeros((), device=device))

    def fold_into(self, progress: Progress, accumulation: int) -> float:
        """Add this window to the run totals and return its mean micro-batch loss (the one device sync)."""
        loss_sum = self.loss.item()
        progress.loss_sum += loss_sum / accumulation
        progress.samples_seen += self.samples
        progress.tokens_seen += self.tokens
        return loss_sum / max(self.micro_batches, 1)


def checkpoint_step(path: Path) -> int | None:
    """The step in a ``checkpoint-<step>`` folder name, or None for anything else (e.g. ``checkpoint-best``)."""
    suffix = path.name.removeprefix(CHECKPOINT_PREFIX)
    # isascii: str.isdigit also accepts digits such as "²" that int() rejects.
    return int(suffix) if suffix != path.name and suffix.isascii() and suffix.isdigit() else None


def newest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """Newest complete checkpoint; half-written ones never carry the final name (they are renamed when done)."""
    if not checkpoint_dir.is_dir():
        return None
    candidates = [
        p for p in checkpoint_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and checkpoint_step(p) is not None
    ]
    return max(candidates, key=checkpoint_step, default=None)


def save_checkpoint(
    checkpoint_dir: Path,
    keep: int,
    runtime: Runtime,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    progress: Progress,
) -> None:
    """Write the checkpoint under a temporary name and rename it, so a reclaimed instance never leaves half a one."""
    # Every rank's generator state, so each rank replays its own dropout masks after a restart.
    states: list[Any] = [rng_state()]
    if runtime.world_size > 1:
        states = [None] * runtime.world_size
        dist.all_gather_object(states, rng_state())
    if runtime.is_main:
        final = checkpoint_dir / f"{CHECKPOINT_PREFIX}{progress.step:08d}"
        partial = checkpoint_dir / f".partial-{final.name}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": states,
                "progress": progress.__dict__,
            },
            partial / "state.pt",
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        old = sorted(
            (p for p in checkpoint_dir.glob(f"{CHECKPOINT_PREFIX}*") if checkpoint_step(p) is not None),
            key=checkpoint_step,
        )
        for stale in old[: max(len(old) - keep, 0)]:
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("checkpoint saved: %s", final)
    if runtime.world_size > 1:
        dist.barrier()


def load_checkpoint(
    path: Path,
    runtime: Runtime,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    seed: int,
) -> Progress:
    """Restore everything save_checkpoint wrote and return the saved progress."""
    # On the CPU: RNG states must stay CPU tensors; load_state_dict moves weights and optimizer state to the device.
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    progress = Progress(**state["progress"])
    if len(state["rng"]) == runtime.world_size:
        restore_rng_state(state["rng"][runtime.rank])
    else:
        # A different number of processes cannot replay the same streams; stay deterministic all the same.
        logger.warning("checkpoint from %d processes, now %d: reseeding", len(state["rng"]), runtime.world_size)
        seed_everything(seed + progress.step * 1009 + runtime.rank)
    return progress


def write_failure(output_dir: str, message: str) -> None:
    """Write the reason SageMaker shows as FailureReason (first 1024 characters); the toolkit keeps an existing one."""
    if output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        failure = Path(output_dir) / "failure"
        if not failure.exists():
            failure.write_text(message, encoding="utf-8")


def fit_max_seq_length(requested: int, config: Any, tokenizer: Any) -> tuple[int, str]:
    """``--max_seq_length`` bounded by the base model's limit, and the warning to log when it had to be lowered.

    The limit is the smaller of the model's position embeddings (``max_position_embeddings``, ``n_positions`` on
    GPT-2 style configs) and the tokenizer's ``model_max_length`` when it sets one (RoBERTa has 514 positions but
    takes 512 tokens). A longer sequence indexes past the position embeddings and the job crashes mid-training.

    Lowered with a warning rather than refused: the flag's default (128) and the pipeline's hyperparameter are shared
    by every base model, and a value above a model's limit can only mean "as long as the model takes", so refusing
    would make the default unusable with small or distilled models and cost a job start to learn it. The warning
    names the flag, the value and the limit; metrics.json records the length used.
    """
    bounds: list[tuple[int, str]] = []
    for attribute in ("max_position_embeddings", "n_positions"):
        positions = getattr(config, attribute, None)
        if isinstance(positions, int) and positions > 0:
            bounds.append((positions, f"config.{attribute}"))
            break
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < UNSET_TOKENIZER_LIMIT:
        bounds.append((tokenizer_limit, "tokenizer.model_max_length"))
    if not bounds:
        return requested, ""
    limit, source = min(bounds)
    if requested <= limit:
        return requested, ""
    return limit, (
        f"--max_seq_length {requested} exceeds the base model's limit of {limit} tokens ({source}): "
        f"truncating texts to {limit} tokens instead; set max_seq_length <= {limit} to silence this warning"
    )


def load_split(tokenizer: Any, directory: str, labels: list[str], channel: str, max_len: int) -> EncodedDataset:
    """Read, validate and tokenize one channel."""
    return encode_examples(tokenizer, read_examples(directory, labels, channel), max_len)


def build_optimizer(model: torch.nn.Module, args: argparse.Namespace, device: torch.device) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and normalisation weights; the fused kernel on GPU."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.learning_rate, fused=device.type == "cuda")


def export_model(args: argparse.Namespace, model: torch.nn.Module, tokenizer: Any, labels: list[str]) -> None:
    """Save a model directory that serves as is: weights, tokenizer, labels.json and code/inference.py."""
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (model_dir / "labels.json").write_text(json.dumps(labels, indent=2), encoding="utf-8")
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    # inference.py imports only what the inference container already has, so no code/requirements.txt is needed.
    shutil.copy2(HERE / "inference.py", code_dir / "inference.py")


def evaluate_split(
    model: torch.nn.Module,
    dataset: EncodedDataset,
    labels: list[str],
    pad_id: int,
    runtime: Runtime,
    args: argparse.Namespace,
    dtype: torch.dtype | None,
) -> dict[str, Any]:
    """Accuracy, macro F1, loss and per-label scores of one split."""
    predictions, loss = predict_dataset(model, dataset, pad_id, runtime.device, args.per_device_eval_batch_size, dtype)
    metrics = classification_metrics(dataset.labels, predictions, labels)
    metrics["loss"] = loss
    return metrics


class StopRequested:
    """Set by SIGTERM (spot reclaim warning, job stop) so the loop checkpoints and exits between steps."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def agreed(self, runtime: Runtime, check_now: bool) -> bool:
        """Whether to stop now; with several processes all must agree, or the checkpoint collectives would hang.

        The vote costs a collective, so it only happens when ``check_now`` (at logging steps).
        """
        if runtime.world_size == 1:
            return self.requested
        if not check_now:
            return False
        flag = torch.tensor(int(self.requested), device=runtime.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def train(args: argparse.Namespace, runtime: Runtime) -> dict[str, Any]:
    """Run the whole job and return the metrics written to metrics.json."""
    seed_everything(args.seed)
    if args.ignored_flags and runtime.is_main:
        logger.info("ignoring flags this script does not use: %s", " ".join(args.ignored_flags))

    source = args.pretrained_dir or args.model_name_or_path
    # The third place, the folder above the train channel, is the curated layout on a laptop (labels.json at the root
    # beside train/). It does not apply on SageMaker: there the channels are /opt/ml/input/data/<channel>, so the
    # folder above train holds only the other channels. A job whose train channel lacks labels.json needs a
    # 'labels' channel (or --labels_file).
    labels_file = (
        Path(args.labels_file)
        if args.labels_file
        else find_labels_file(args.train_dir, os.environ.get("SM_CHANNEL_LABELS"), Path(args.train_dir).parent)
    )
    labels = load_labels(labels_file)
    tokenizer = AutoTokenizer.from_pretrained(source)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    max_seq_length, warning = fit_max_seq_length(args.max_seq_length, AutoConfig.from_pretrained(source), tokenizer)
    if warning and runtime.is_main:
        logger.warning(warning)
    train_data = load_split(tokenizer, args.train_dir, labels, "train", max_seq_length)
    eval_splits = {
        name: load_split(tokenizer, directory, labels, name, max_seq_length)
        for name, directory in (("validation", args.validation_dir), ("test", args.test_dir))
        if directory
    }

    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        # A base model saved with another head (or none) gets a fresh head of the right size.
        ignore_mismatched_sizes=True,
    ).to(runtime.device)
    if runtime.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dtype, needs_scaler = choose_precision(args.bf16, runtime.device)
    scaler = torch.amp.GradScaler("cuda") if needs_scaler else None

    lengths = train_data.lengths()
    batches_per_epoch = len(
        shard_batches(
            length_grouped_batches(lengths, args.per_device_train_batch_size, args.seed, 0),
            runtime.rank,
            runtime.world_size,
        )
    )
    steps_per_epoch = max(batches_per_epoch // args.gradient_accumulation_steps, 1)
    total_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.epochs * steps_per_epoch)
    optimizer = build_optimizer(model, args, runtime.device)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total_steps), total_steps)

    checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    progress = Progress()
    resume_from = newest_checkpoint(checkpoint_dir) if checkpoint_dir else None
    if resume_from is not None:
        progress = load_checkpoint(resume_from, runtime, model, optimizer, scheduler, scaler, args.seed)
        if runtime.is_main:
            logger.info(
                "resumed from %s at step %d (epoch %d, batch %d)",
                resume_from,
                progress.step,
                progress.epoch,
                progress.batch_in_epoch,
            )

    train_model: torch.nn.Module = model
    if args.torch_compile:
        train_model = torch.compile(train_model)
    if runtime.world_size > 1:
        train_model = DistributedDataParallel(
            train_model, device_ids=[runtime.local_rank] if runtime.device.type == "cuda" else None
        )

    if runtime.is_main:
        logger.info(
            "run: %d train examples, %d labels, %d process(es) on %s, precision %s, batch %d x %d accumulation x %d "
            "processes, %d steps (%d per epoch)",
            len(train_data),
            len(labels),
            runtime.world_size,
            runtime.device,
            dtype or torch.float32,
            args.per_device_train_batch_size,
            args.gradient_accumulation_steps,
            runtime.world_size,
            total_steps,
            steps_per_epoch,
        )

    stop = StopRequested()
    train_model.train()
    start_time = time.perf_counter()
    start_step = progress.step
    window = Window.fresh(runtime.device)
    run_samples = run_tokens = 0
    micro_in_step = 0
    while progress.step < total_steps:
        batches = shard_batches(
            length_grouped_batches(lengths, args.per_device_train_batch_size, args.seed, progress.epoch),
            runtime.rank,
            runtime.world_size,
        )
        # Leftover micro-batches that cannot fill an accumulation group are carried into the next epoch's first step.
        while progress.batch_in_epoch < len(batches) and progress.step < total_steps:
            batch = collate(train_data, batches[progress.batch_in_epoch], pad_id)
            progress.batch_in_epoch += 1
            micro_in_step += 1
            last_micro = micro_in_step == args.gradient_accumulation_steps
            sync = nullcontext() if last_micro or runtime.world_size == 1 else train_model.no_sync()
            with sync, torch.autocast(runtime.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = train_model(
                    input_ids=batch["input_ids"].to(runtime.device, non_blocking=True),
                    attention_mask=batch["attention_mask"].to(runtime.device, non_blocking=True),
                    labels=batch["labels"].to(runtime.device, non_blocking=True),
                ).loss
                scaled = loss / args.gradient_accumulation_steps
                (scaler.scale(scaled) if scaler else scaled).backward()
            window.loss += loss.detach().float()
            window.micro_batches += 1
            samples = len(batch["labels"]) * runtime.world_size
            window.samples += samples
            window.tokens += batch["num_tokens"] * runtime.world_size
            run_samples += samples
            run_tokens += batch["num_tokens"] * runtime.world_size
            if not last_micro:
                continue
            micro_in_step = 0
            if scaler:
                scaler.unscale_(optimizer)
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.step += 1

            if progress.step % args.logging_steps == 0 or progress.step == total_steps:
                elapsed = time.perf_counter() - window.started
                window_loss = window.fold_into(progress, args.gradient_accumulation_steps)
                done = progress.step - start_step
                eta = (time.perf_counter() - start_time) / done * (total_steps - progress.step)
                if runtime.is_main:
                    logger.info(
                        "step %d/%d | loss %.4f | lr %.3g | %.1f samples/s | %.0f tokens/s | eta %s",
                        progress.step,
                        total_steps,
                        window_loss,
                        scheduler.get_last_lr()[0],
                        window.samples / elapsed,
                        window.tokens / elapsed,
                        format_seconds(eta),
                    )
                window = Window.fresh(runtime.device)

            if args.interrupt_after_steps and progress.step == args.interrupt_after_steps:
                logger.warning("resume drill: stopping abruptly after step %d", progress.step)
                sys.stdout.flush()
                os._exit(INTERRUPTED_EXIT_CODE)
            checkpoint_due = args.checkpoint_every_steps and progress.step % args.checkpoint_every_steps == 0
            stopping = stop.agreed(runtime, check_now=progress.step % args.logging_steps == 0)
            if checkpoint_dir and (checkpoint_due or stopping) and progress.step < total_steps:
                # Saved totals must include the steps not logged yet, so a resumed run reports the same average loss.
                window.fold_into(progress, args.gradient_accumulation_steps)
                save_checkpoint(
                    checkpoint_dir, args.keep_checkpoints, runtime, model, optimizer, scheduler, scaler, progress
                )
                window = Window.fresh(runtime.device)
            if stopping and progress.step < total_steps:
                logger.warning(
                    "SIGTERM received: stopping at step %d (checkpoint dir: %s)",
                    progress.step,
                    checkpoint_dir or "none, progress is lost",
                )
                raise SystemExit(INTERRUPTED_EXIT_CODE)
        if progress.batch_in_epoch >= len(batches):
            progress.epoch += 1
            progress.batch_in_epoch = 0

    runtime_s = time.perf_counter() - start_time
    metrics: dict[str, Any] = {
        "train": {
            "loss": progress.loss_sum / max(progress.step, 1),
            "steps": progress.step,
            "epochs": progress.epoch + progress.batch_in_epoch / max(batches_per_epoch, 1),
            "samples": progress.samples_seen,
            "resumed_from_step": start_step,
            "runtime_s": runtime_s,
            "samples_per_s": run_samples / runtime_s,
            "tokens_per_s": run_tokens / runtime_s,
        },
        "world_size": runtime.world_size,
        "precision": str(dtype or torch.float32).replace("torch.", ""),
        "max_seq_length": max_seq_length,
    }
    if runtime.is_main:
        for name, dataset in eval_splits.items():
            metrics[name] = evaluate_split(model, dataset, labels, pad_id, runtime, args, dtype)
            logger.info("%s: accuracy %.4f, macro F1 %.4f", name, metrics[name]["accuracy"], metrics[name]["macro_f1"])
        export_model(args, model, tokenizer, labels)
        Path(args.output_data_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_data_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        logger.info("model saved to %s, metrics to %s", args.model_dir, Path(args.output_data_dir) / "metrics.json")
    if runtime.world_size > 1:
        dist.barrier()
    return metrics


def format_seconds(seconds: float) -> str:
    """1h02m03s style."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse flags, train, and turn bad data into a clear failure reason."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    args = parse_args(argv)
    runtime = setup_runtime()
    try:
        train(args, runtime)
    except DataValidationError as error:
        message = f"bad training data: {error}"
        logger.error(message)
        if runtime.is_main:
            write_failure(args.output_dir, message)
        return 1
    finally:
        if runtime.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
