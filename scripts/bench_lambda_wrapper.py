"""What the classify Lambda wrapper costs: warm overhead per request and cold initialisation, side by side.

Warm: the same request, interleaved, as a direct botocore ``InvokeEndpoint`` and as the full decorated
``lambda_handler`` (Powertools logger, tracer, metrics, validation, error mapping, then the same ``InvokeEndpoint``),
both against one local runtime API (scripts/local_runtime.py) whose backend answers at
once, so the difference is the wrapper alone. Cold: the time to import handler.py in a fresh interpreter (what
Lambda's INIT phase runs: Powertools, botocore, the client), twice: as a plain process (``POWERTOOLS_TRACE_DISABLED``
unset, but outside Lambda, where Powertools does not trace), and with ``LAMBDA_TASK_ROOT`` set as the Lambda runtime
sets it, so tracing is on and the X-Ray SDK takes its Lambda path (the "in Lambda env" row). Neither is a real Lambda
sandbox: the code there loads from the function's package and layer, on the CPU share of the function's memory.
Goals (issue 9): warm overhead at most 5 ms, cold init at most 300 ms (checked on both cold rows).
``--baseline-handler <file>`` also times another version of handler.py, its cold probes interleaved with this one's
so that load on a shared machine hits both alike (e.g. ``git show <commit>:lambda_handlers/classify/handler.py``).

    .venv/bin/python scripts/bench_lambda_wrapper.py [--requests 300] [--texts 4] [--cold-runs 10]
        [--baseline-handler /tmp/handler_before.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
HANDLER = ROOT / "lambda_handlers" / "classify" / "handler.py"
WARM_GOAL_MS = 5.0
COLD_GOAL_MS = 300.0
COLD_PROBE = """
import importlib.util, sys, time
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("classify_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
print((time.perf_counter() - start) * 1000)
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def row(name: str, values: list[float]) -> str:
    return f"{name:<36}{statistics.median(values):>10.2f}{percentile(values, 0.95):>10.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="warm requests per side (default 300)")
    parser.add_argument("--texts", type=int, default=4, help="texts per request (default 4)")
    parser.add_argument("--cold-runs", type=int, default=10, help="fresh interpreters for cold init (default 10)")
    parser.add_argument("--baseline-handler", type=Path, help="another handler.py to time cold, interleaved")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from scripts.local_runtime import local_runtime

    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ENDPOINT_NAME": "model",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench/Classify",
    }
    texts = [f"benchmark text number {i} about resetting a password" for i in range(args.texts)]
    answer = json.dumps([{"label": "a", "score": 0.5, "truncated": False}] * args.texts).encode()

    with local_runtime({"model": lambda body, headers: (200, answer)}) as url:
        os.environ.update(env, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=url, POWERTOOLS_TRACE_DISABLED="true")
        spec = importlib.util.spec_from_file_location("classify_handler", HANDLER)
        assert spec is not None and spec.loader is not None
        classify = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = classify
        spec.loader.exec_module(classify)
        classify.logger.registered_handler.stream = io.StringIO()  # Logs are written, just not to the terminal.
        context = SimpleNamespace(
            function_name="classify",
            function_version="$LATEST",
            memory_limit_in_mb=512,
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:classify",
            aws_request_id="bench",
        )
        event = {
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"inputs": texts}),
            "isBase64Encoded": False,
            "requestContext": {"requestId": "bench"},
        }
        body = json.dumps({"inputs": texts}).encode()
        runtime = classify.RUNTIME
        direct_ms: list[float] = []
        handler_ms: list[float] = []
        stdout = sys.stdout
        print(f"warm: {args.requests} requests per side, {args.texts} texts each, against {url}", flush=True)
        for i in range(args.requests + 20):  # The first 20 of each warm up connections and caches.
            start = time.perf_counter()
            runtime.invoke_endpoint(
                EndpointName="model", ContentType="application/json", Accept="application/json", Body=body
            )["Body"].read()
            direct = (time.perf_counter() - start) * 1000
            sys.stdout = io.StringIO()  # Metrics print EMF to stdout, as in Lambda.
            try:
                start = time.perf_counter()
                result = classify.lambda_handler(event, context)
                wrapped = (time.perf_counter() - start) * 1000
            finally:
                sys.stdout = stdout
            assert result["statusCode"] == 200, result
            if i >= 20:
                direct_ms.append(direct)
                handler_ms.append(wrapped)
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{args.requests + 20}", flush=True)

    probe_env = {**os.environ, **env}
    probe_env.pop("POWERTOOLS_TRACE_DISABLED", None)
    handlers = {"": HANDLER}
    if args.baseline_handler:
        handlers["baseline "] = args.baseline_handler.resolve()
    cold: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-task-root-") as task_root:
        environments = {
            "cold init (import)": probe_env,
            "cold init, in Lambda env": {**probe_env, "LAMBDA_TASK_ROOT": task_root},
        }
        print(f"cold: {args.cold_runs} fresh interpreters per row, interleaved", flush=True)
        for run in range(args.cold_runs):
            for label, environment in environments.items():
                for prefix, handler in handlers.items():
                    out = subprocess.run(
                        [sys.executable, "-c", COLD_PROBE, str(handler)],
                        env=environment,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    cold.setdefault(prefix + label, []).append(float(out.stdout.strip().splitlines()[-1]))
            print(f"  {run + 1}/{args.cold_runs}: " + ", ".join(f"{v[-1]:.0f}" for v in cold.values()) + " ms")

    overhead = [h - d for h, d in zip(handler_ms, direct_ms, strict=True)]
    print()
    print(f"{'milliseconds':<36}{'median':>10}{'p95':>10}")
    print(row("direct InvokeEndpoint", direct_ms))
    print(row("lambda_handler", handler_ms))
    print(row("overhead (paired)", overhead))
    for label, values in sorted(cold.items(), key=lambda item: item[0].removeprefix("baseline ")):
        print(row(label, values))
    warm_ok = statistics.median(overhead) <= WARM_GOAL_MS
    cold_ok = max(statistics.median(cold[label]) for label in environments) <= COLD_GOAL_MS
    print(f"goal warm overhead <= {WARM_GOAL_MS} ms (median): {'met' if warm_ok else 'MISSED'}")
    print(f"goal cold init <= {COLD_GOAL_MS} ms (median, both rows): {'met' if cold_ok else 'MISSED'}")
    return 0 if warm_ok and cold_ok else 1


if __name__ == "__main__":
    sys.exit(main())
