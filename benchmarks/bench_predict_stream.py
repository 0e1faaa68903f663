"""Benchmark: peak memory and rows/s of `sentiment-pipeline predict --input X --output Y`.

The logistic baseline (the train_baseline stage's pipeline, default parameters, fitted on all
of ../shared/data/airline_tweets.csv) classifies 10,000 and 1,000,000 short texts sampled from
the airline tweets. Each run is a fresh process; its peak RSS comes from the kernel
(ru_maxrss, read by a small launcher process). Target: peak RSS for 1,000,000 rows within 2x
that for 10,000.
Inputs and outputs live in a temporary folder, never in the repository.

    python benchmarks/bench_predict_stream.py [--sizes 10000 1000000] [--pairs csv:parquet ...]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import AIRLINE, print_table, write_result
from sentiment_pipeline.config.baseline import BaselineConfig
from sentiment_pipeline.models import train_baseline as baseline_stage
from sentiment_pipeline.models.artifacts.manifest import ModelManifest
from sentiment_pipeline.models.artifacts.sklearn_model import save_sklearn

SIZES = (10_000, 1_000_000)
PAIRS = ("csv:parquet", "parquet:csv", "jsonl:jsonl")
TARGET_RATIO = 2.0
BLANK_SHARE = 0.005  # a few blank texts, so the blank path is measured too


def train_baseline(target: Path) -> list[str]:
    """The project's baseline pipeline fitted on every airline tweet, saved as a model folder."""
    frame = pd.read_csv(AIRLINE, usecols=["text", "airline_sentiment"]).dropna()
    labels = sorted(frame["airline_sentiment"].unique())
    train = pd.DataFrame(
        {"text": frame["text"], "label": frame["airline_sentiment"].map(labels.index)}
    )
    pipeline = baseline_stage.train(BaselineConfig(), train)
    manifest = ModelManifest(name="logistic_baseline", kind="sklearn", labels=labels)
    save_sklearn(target, pipeline, manifest)
    return labels


def sample_texts(n: int, seed: int = 0) -> pd.DataFrame:
    tweets = pd.read_csv(AIRLINE, usecols=["text"])["text"].dropna().to_numpy()
    rng = np.random.default_rng(seed)
    texts = tweets[rng.integers(0, len(tweets), n)].astype(object)
    texts[rng.random(n) < BLANK_SHARE] = ""
    return pd.DataFrame({"id": np.arange(n), "text": texts})


def write_input(frame: pd.DataFrame, path: Path) -> Path:
    fmt = path.suffix.lstrip(".")
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


# Peak RSS is measured by a small launcher process: Linux carries the parent's peak RSS over
# fork and exec into a child's ru_maxrss, so a child of this (large) process would report at
# least this process's size.
LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[2:], capture_output=True, text=True)
wall = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as handle:
    json.dump({"rc": done.returncode, "wall": wall, "peak_kib": peak_kib,
               "stdout": done.stdout, "stderr": done.stderr[-4000:]}, handle)
"""


def run_measured(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one fresh process."""
    report = cwd / "measure.json"
    subprocess.run([sys.executable, "-c", LAUNCHER, str(report), *command], cwd=cwd, check=True)
    measured = json.loads(report.read_text())
    if measured["rc"] != 0:
        raise SystemExit(f"{' '.join(command)} failed ({measured['rc']}):\n{measured['stderr']}")
    return measured["wall"], measured["peak_kib"] / 1024, measured["stdout"]  # KiB on Linux


def count_rows(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return len(pd.read_parquet(path, columns=["id"]))
    if fmt == "csv":  # a tweet may hold a line break inside its quotes
        return len(pd.read_csv(path, usecols=["id"]))
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def predict_command(model: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sentiment_pipeline.cli", "predict",
            "--model", str(model), "--trust", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS),
                        help="input:output formats, e.g. csv:parquet")
    parser.add_argument("--chunk-size", type=int, default=10_000)
    args = parser.parse_args()
    if not AIRLINE.is_file():
        raise SystemExit(f"benchmark data not found at {AIRLINE}")

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp_name:
        tmp = Path(tmp_name)
        model = tmp / "logistic_baseline"
        labels = train_baseline(model)
        wall, rss, _ = run_measured(predict_command(model, "great crew"), tmp)
        rows.append({"input": "argument", "output": "stdout", "rows": 1, "wall_s": round(wall, 2),
                     "rows_per_s": None, "peak_rss_mib": round(rss, 1)})
        print(f"start-up (imports + model, one text): {rss:.0f} MiB, {wall:.1f} s", flush=True)
        for size in args.sizes:
            frame = sample_texts(size)
            for pair in args.pairs:
                source_fmt, target_fmt = pair.split(":")
                source = write_input(frame, tmp / f"in_{size}.{source_fmt}")
                target = tmp / f"out_{size}.{target_fmt}"
                command = predict_command(
                    model, "--input", str(source), "--output", str(target),
                    "--chunk-size", str(args.chunk_size),
                )
                wall, rss, out = run_measured(command, tmp)
                streamed = re.search(r"([\d,]+) rows/s", out)
                written = count_rows(target, target_fmt)
                if written != size:
                    raise SystemExit(f"{target} holds {written} rows, expected {size}")
                row = {
                    "input": source_fmt, "output": target_fmt, "rows": size,
                    "wall_s": round(wall, 2),
                    "rows_per_s": int(streamed.group(1).replace(",", "")) if streamed else None,
                    "peak_rss_mib": round(rss, 1),
                }
                rows.append(row)
                print(row, flush=True)
                target.unlink()
            del frame
            for pair in args.pairs:
                (tmp / f"in_{size}.{pair.split(':')[0]}").unlink(missing_ok=True)

    ratios = {}
    small, large = min(args.sizes), max(args.sizes)
    for pair in args.pairs:
        source_fmt, target_fmt = pair.split(":")
        by_size = {r["rows"]: r["peak_rss_mib"] for r in rows
                   if (r["input"], r["output"]) == (source_fmt, target_fmt)}
        if small != large:
            ratios[pair] = round(by_size[large] / by_size[small], 3)
    print()
    print_table(rows)
    print()
    for pair, ratio in ratios.items():
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(f"{pair}: peak RSS {large:,} rows / {small:,} rows = {ratio:.2f} "
              f"({verdict} the {TARGET_RATIO:g}x target)")
    path = write_result("predict_stream", {
        "model": "logistic baseline (train_baseline pipeline, default params, all airline tweets)",
        "labels": labels,
        "chunk_size": args.chunk_size,
        "blank_share": BLANK_SHARE,
        "rows": rows,
        "rss_ratio_large_vs_small": ratios,
        "target_ratio": TARGET_RATIO,
        "meets_target": all(r <= TARGET_RATIO for r in ratios.values()),
        "note": "rows_per_s: the command's own streaming rate (after start-up and model load); "
        "wall_s: the whole process. peak_rss_mib: ru_maxrss of that process.",
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
