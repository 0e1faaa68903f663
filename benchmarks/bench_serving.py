"""Benchmark: our HTTP service (torch, ONNX fp32, ONNX int8) against `mlflow models serve` and an
in-process `transformers.pipeline`, for the logistic baseline and the fine-tuned MiniLM stand-in.

Every server runs as its own process on 127.0.0.1 with one worker; the load comes from a
closed-loop client on keep-alive connections (benchmarks/loadgen.py) in this process, so client
and server share the machine's cores, as they would on a 2-core host. Each cell is `--seconds` of
load after a 2 s warm-up.

    python benchmarks/bench_serving.py [--seconds 10] [--train-rows 0 (all)] [--epochs 1]
        [--skip-mlflow] [--result-name serving]

Cells: single-text requests at concurrency 1, 8 and 32, and 32-text requests at concurrency 4;
a sweep of serve.max_batch_requests at concurrency 32 (the default is the fastest); test-split
macro-F1 of each backend; the in-process pipeline at batch size 32. The int8/torch ratio is
measured again in --rounds interleaved rounds at concurrency 32 (median; worst = slowest int8
round against the fastest torch round).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import airline_project, load_split, minilm_path, print_table, stop_group, write_result
from loadgen import http_request, run_load

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
SINGLE_CONCURRENCY = (1, 8, 32)
BATCH_CONCURRENCY = 4
BATCH_TEXTS = 32
SWEEP = (1, 4, 8, 32)
TARGETS = {
    "int8_vs_torch_speedup": 2.5,  # ONNX int8 / torch backend, requests/s at concurrency 32
    "ours_vs_mlflow_baseline": 3.0,  # our service / mlflow models serve, concurrency 32
    "ours_vs_mlflow_minilm": 3.0,
    "int8_vs_pipeline": 1.0,  # our int8 service (32-text requests) / in-process pipeline, texts/s
    "int8_f1_drop_points": 1.0,  # at most
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before {url} was ready")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.3)
    raise SystemExit(f"{url} not ready after {timeout_s:.0f} s")


@contextlib.contextmanager
def server(cmd: list[str], health: str, port: int, cwd: Path, env: dict[str, str]) -> Iterator[int]:
    log = open(cwd / f"server-{port}.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_ready(f"http://{HOST}:{port}{health}", process)
        yield port
    finally:
        stop_group(process)
        log.close()


def ours(model_dir: Path, root: Path, env: dict[str, str], **settings: Any):
    port = free_port()
    sets = [f"serve.{key}={value}" for key, value in {"reload_interval_s": 0, **settings}.items()]
    cmd = [str(BIN / "sentiment-pipeline"), "serve", "--model", str(model_dir),
           "--port", str(port), "--workers", "1"]
    for item in sets:
        cmd += ["--set", item]
    return server(cmd, "/health", port, root, env)


def mlflow_serve(model_uri: str, root: Path, env: dict[str, str]):
    port = free_port()
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
           "--host", HOST, "--port", str(port), "--workers", "1"]
    return server(cmd, "/ping", port, root, env)


def predict_requests(texts: list[str], per_request: int, port: int) -> list[bytes]:
    if per_request == 1:
        payloads = [{"inputs": t} for t in texts]
    else:
        payloads = [
            {"inputs": [[t] for t in texts[i : i + per_request]]}
            for i in range(0, len(texts) - per_request + 1, per_request)
        ]
    return [http_request(HOST, port, "/predict", p) for p in payloads]


def invocations_requests(texts: list[str], per_request: int, port: int) -> list[bytes]:
    payloads = [
        {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts[i : i + n]]}}
        for n in [per_request]
        for i in range(0, len(texts) - n + 1, n)
    ]
    return [http_request(HOST, port, "/invocations", p) for p in payloads]


def measure(port: int, texts: list[str], protocol: str, seconds: float) -> list[dict[str, Any]]:
    """Single-text cells at each concurrency and one 32-text cell."""
    build = predict_requests if protocol == "predict" else invocations_requests
    cells = [(1, c) for c in SINGLE_CONCURRENCY] + [(BATCH_TEXTS, BATCH_CONCURRENCY)]
    rows = []
    for per_request, concurrency in cells:
        result = run_load(HOST, port, build(texts, per_request, port),
                          concurrency=concurrency, seconds=seconds)
        rows.append({"texts_per_request": per_request, "concurrency": concurrency,
                     **result.summary(per_request)})
        print(f"    {per_request:>2} text(s) x {concurrency:>2}: "
              f"{rows[-1]['requests_per_s']} req/s, p50 {rows[-1]['p50_ms']} ms, "
              f"p99 {rows[-1]['p99_ms']} ms, errors {rows[-1]['errors']}", flush=True)
    return rows


def fine_tune_minilm(paths, target: Path, train_rows: int, epochs: int) -> None:
    """MiniLM fine-tuned on the airline train split, once (kept under benchmarks/.work)."""
    if (target / "model.json").is_file():
        return
    from transformers import AutoTokenizer

    from sentiment_pipeline.data.contract import read_labels
    from sentiment_pipeline.models.artifacts.manifest import ModelManifest
    from sentiment_pipeline.models.artifacts.transformers_model import save_transformers
    from sentiment_pipeline.models.distilbert.encoding import encode, subsample
    from sentiment_pipeline.models.distilbert.params import DistilBERTTrialParams
    from sentiment_pipeline.models.distilbert.trainer import TrainingSetup, run_trial

    labels = read_labels(paths)
    train, val = load_split(paths, "train"), load_split(paths, "val")
    if train_rows:
        train = subsample(train, train_rows, seed=42)
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    setup = TrainingSetup(
        model_name_or_path=str(minilm_path()), tokenizer=tokenizer,
        train=encode(tokenizer, train, 128), val=encode(tokenizer, val, 128),
        labels=labels, device="cpu", precision="fp32",
    )
    params = DistilBERTTrialParams(learning_rate=5e-5, per_device_train_batch_size=32,
                                   num_train_epochs=epochs, weight_decay=0.01, warmup_steps=0.0)
    print(f"fine-tuning MiniLM on {len(train)} tweets, {epochs} epoch(s)...", flush=True)
    outcome = run_trial(setup, params)
    print(f"  done in {outcome.duration_s:.0f} s, val macro-F1 {outcome.val_macro_f1:.4f}")
    manifest = ModelManifest(name="minilm", kind="transformers", labels=labels,
                             params={"max_length": 128, **params.model_dump()},
                             metrics={"val_macro_f1": outcome.val_macro_f1})
    save_transformers(target, outcome.model, tokenizer, manifest)


def test_f1(model_dir: Path, test) -> float:
    from sklearn.metrics import f1_score

    from sentiment_pipeline.models.artifacts.loader import load_model

    model = load_model(model_dir, require_real=True, trust=True)
    predicted = model.predict(test["text"].tolist())
    truth = [model.labels[i] for i in test["label"]]  # the split holds label ids
    return float(f1_score(truth, predicted, average="macro"))


def register(paths, model_dir: Path, name: str, kind: str, env: dict[str, str]) -> str:
    """Register `model_dir` with our register_model stage in the benchmark's own MLflow store."""
    from sentiment_pipeline.config.register import RegisterConfig
    from sentiment_pipeline.evaluation.best_model import BestModel
    from sentiment_pipeline.io import write_json
    from sentiment_pipeline.registry import register_model
    from sentiment_pipeline.settings import get_settings

    best = BestModel(name=name, path=str(model_dir), kind=kind, primary_metric="macro_f1",
                     score=1.0, metrics={}, mlflow_run_id=None, evaluation_run_id=None,
                     evaluated=[name], skipped={})
    write_json(paths.best_model, best.model_dump(mode="json"))
    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    get_settings.cache_clear()
    result = register_model.run(RegisterConfig(model_name=f"bench-{name}", min_score=0.0), paths)
    return f"models:/bench-{name}/{result.version}"


def pipeline_throughput(model_dir: Path, texts: list[str], seconds: float) -> dict[str, Any]:
    """transformers.pipeline("text-classification") in this process, batch size 32."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(model_dir), device=-1, batch_size=32)
    classify(texts[:64])  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        chunk = texts[done % len(texts) :][:512] or texts[:512]
        classify(chunk)
        done += len(chunk)
    elapsed = time.perf_counter() - start
    return {"texts": done, "seconds": round(elapsed, 2), "texts_per_s": round(done / elapsed, 1)}


def rate_at(rows: list[dict[str, Any]], per_request: int, concurrency: int) -> float:
    for row in rows:
        if row["texts_per_request"] == per_request and row["concurrency"] == concurrency:
            return row["requests_per_s"]
    raise KeyError((per_request, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per cell")
    parser.add_argument("--train-rows", type=int, default=0, help="0: the whole train split")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved int8/torch rounds")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--result-name", default="serving")
    args = parser.parse_args()

    from sentiment_pipeline.config.export import OnnxExportConfig
    from sentiment_pipeline.models.conversion.int8 import quantize_int8
    from sentiment_pipeline.models.conversion.onnx_export import export_transformers
    from sentiment_pipeline.stages import run_stage

    paths, manager = airline_project("serving")
    root = paths.root
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'bench-mlruns.db'}",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if not (paths.baseline_model / "model.json").is_file():
        run_stage("train_baseline", manager.config, paths)
    minilm = root / "models" / "minilm"
    fine_tune_minilm(paths, minilm, args.train_rows, args.epochs)
    onnx_dir, int8_dir = root / "models" / "minilm_onnx", root / "models" / "minilm_onnx_int8"
    export = OnnxExportConfig()
    if not (onnx_dir / "model.json").is_file():
        export_transformers(minilm, onnx_dir, export)
    if not (int8_dir / "model.json").is_file():
        quantize_int8(onnx_dir, int8_dir, export)

    test = load_split(paths, "test")
    texts = test["text"].astype(str).tolist()
    f1 = {
        "baseline": test_f1(paths.baseline_model, test),
        "torch": test_f1(minilm, test),
        "onnx": test_f1(onnx_dir, test),
        "onnx-int8": test_f1(int8_dir, test),
    }
    print("test macro-F1:", {k: round(v, 4) for k, v in f1.items()}, flush=True)

    runs: dict[str, Any] = {}
    models = {"baseline": (paths.baseline_model, "auto"), "minilm": (minilm, None)}
    sweep: dict[str, dict[int, float]] = {}
    for name, (model_dir, _) in models.items():
        backends = ["auto"] if name == "baseline" else ["torch", "onnx", "onnx-int8"]
        for backend in backends:
            target = {"torch": minilm, "onnx": onnx_dir, "onnx-int8": int8_dir}.get(backend,
                                                                                 model_dir)
            label = name if backend == "auto" else f"{name}:{backend}"
            print(f"ours {label}", flush=True)
            with ours(target, root, env, backend="auto") as port:
                runs[f"ours/{label}"] = measure(port, texts, "predict", args.seconds)
                if backend in ("auto", "onnx-int8"):
                    inv = run_load(HOST, port, invocations_requests(texts, 1, port),
                                   concurrency=32, seconds=args.seconds)
                    runs[f"ours/{label}/invocations_c32"] = inv.summary(1)
        if not args.skip_sweep:
            target = paths.baseline_model if name == "baseline" else int8_dir
            sweep[name] = {}
            for size in SWEEP:
                with ours(target, root, env, max_batch_requests=size) as port:
                    result = run_load(HOST, port, predict_requests(texts, 1, port),
                                      concurrency=32, seconds=args.seconds)
                    sweep[name][size] = result.summary(1)["requests_per_s"]
                    print(f"  sweep {name} max_batch_requests={size}: {sweep[name][size]} req/s",
                          flush=True)
        if not args.skip_mlflow:
            uri = register(paths, model_dir, name, "sklearn" if name == "baseline"
                           else "transformers", env)
            print(f"mlflow models serve {uri}", flush=True)
            with mlflow_serve(uri, root, env) as port:
                runs[f"mlflow/{name}"] = measure(port, texts, "invocations", args.seconds)

    # The headline ratio, measured again: int8 and torch at concurrency 32, interleaved rounds.
    rounds: dict[str, list[float]] = {"onnx-int8": [], "torch": []}
    for _ in range(args.rounds):
        for backend, target in (("onnx-int8", int8_dir), ("torch", minilm)):
            with ours(target, root, env) as port:
                result = run_load(HOST, port, predict_requests(texts, 1, port),
                                  concurrency=32, seconds=args.seconds)
                rounds[backend].append(result.summary(1)["requests_per_s"])
                print(f"  round: {backend} {rounds[backend][-1]} req/s", flush=True)
    runs["int8_vs_torch_rounds_c32"] = rounds

    runs["pipeline/minilm"] = pipeline_throughput(minilm, texts, args.seconds)
    print(f"in-process pipeline: {runs['pipeline/minilm']['texts_per_s']} texts/s")

    ratios: dict[str, float | None] = {
        "int8_vs_torch_speedup": round(statistics.median(rounds["onnx-int8"])
                                       / statistics.median(rounds["torch"]), 2),
        "int8_vs_torch_speedup_worst": round(min(rounds["onnx-int8"]) / max(rounds["torch"]), 2),
        "int8_vs_pipeline": round(
            rate_at(runs["ours/minilm:onnx-int8"], BATCH_TEXTS, BATCH_CONCURRENCY) * BATCH_TEXTS
            / runs["pipeline/minilm"]["texts_per_s"], 2),
        "int8_f1_drop_points": round((f1["torch"] - f1["onnx-int8"]) * 100, 2),
    }
    if not args.skip_mlflow:
        ratios["ours_vs_mlflow_baseline"] = round(rate_at(runs["ours/baseline"], 1, 32)
                                                  / rate_at(runs["mlflow/baseline"], 1, 32), 2)
        ratios["ours_vs_mlflow_minilm"] = round(rate_at(runs["ours/minilm:onnx-int8"], 1, 32)
                                                / rate_at(runs["mlflow/minilm"], 1, 32), 2)
    met = {key: (value is not None and (value <= TARGETS[key] if key.endswith("points")
                                         else value >= TARGETS[key]))
           for key, value in ratios.items() if key in TARGETS}

    table = []
    for key, rows in runs.items():
        if isinstance(rows, list):
            for row in rows:
                table.append({"server": key, **row})
    print_table(table)
    if sweep:
        print("max_batch_requests sweep at concurrency 32 (requests/s):", json.dumps(sweep))
    print("ratios:", json.dumps(ratios), "met:", json.dumps(met))
    out = write_result(args.result_name, {
        "seconds_per_cell": args.seconds,
        "train_rows": args.train_rows or "all",
        "epochs": args.epochs,
        "test_macro_f1": f1,
        "runs": runs,
        "max_batch_requests_sweep_c32": sweep,
        "ratios": ratios,
        "targets": TARGETS,
        "targets_met": met,
    })
    print(f"results written to {out}")
    shutil.rmtree(root / "mlruns-artifacts", ignore_errors=True)


if __name__ == "__main__":
    main()
