"""Benchmark 2: the same Optuna study with the median pruner and without a pruner.

Both studies run the train_distilbert stage itself (same seed, trial count, search space and
subsample of the airline split; all-MiniLM-L6-v2 as the checkpoint) and report the optimizer
steps of all trials, the wall time and the best validation macro-F1.

    python benchmarks/bench_pruning.py [--trials 10] [--rows 2000] [--evals-per-epoch 3]
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from common import (
    RESULTS,
    airline_project,
    compare_with_first,
    minilm_path,
    print_table,
    write_result,
)
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.stages import run_stage


def study(pruner: str, args: argparse.Namespace) -> dict:
    paths, manager = airline_project(
        f"pruning-{pruner}",
        f"train.distilbert.model_name_or_path={minilm_path()}",
        "train.distilbert.allow_cpu=true",
        f"train.distilbert.pruner={pruner}",
        f"train.distilbert.n_trials={args.trials}",
        f"train.distilbert.max_train_samples={args.rows}",
        f"train.distilbert.max_eval_samples={args.val_rows}",
        f"train.distilbert.evals_per_epoch={args.evals_per_epoch}",
        "train.distilbert.lr=[1.0e-5, 1.0e-4]",
        "train.distilbert.batch_size=[16, 32]",
        "train.distilbert.eval_batch_size=128",
    )
    start = time.perf_counter()
    run_stage("train_distilbert", manager.config, paths)
    wall = time.perf_counter() - start
    trials = pd.read_csv(paths.distilbert_results / "trials.csv")
    summary = json.loads((paths.distilbert_results / "study.json").read_text())
    return {
        "pruner": pruner,
        "trials": len(trials),
        "pruned": int((trials["state"] == "pruned").sum()),
        "optimizer_steps": int(trials["optimizer_steps"].sum()),
        "wall_s": round(wall, 1),
        "best_val_macro_f1": round(float(summary["best_val_macro_f1"]), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--val-rows", type=int, default=500)
    parser.add_argument("--evals-per-epoch", type=int, default=3)
    parser.add_argument(
        "--pruners", nargs="*", default=["median", "hyperband"], choices=["median", "hyperband"],
        help="pruned studies to compare with the study without a pruner (always run first)",
    )
    parser.add_argument(
        "--reuse", action="store_true",
        help="take studies already in results/pruning.json (same settings) instead of rerunning",
    )
    args = parser.parse_args()
    configure_logging()

    settings = {k: v for k, v in vars(args).items() if k not in ("pruners", "reuse")}
    done: dict[str, dict] = {}
    previous = RESULTS / "pruning.json"
    if args.reuse and previous.is_file():
        old = json.loads(previous.read_text())
        if old.get("settings") == settings:
            done = {row["pruner"]: row for row in old["studies"]}
    rows = []
    for pruner in ["none", *args.pruners]:
        rows.append(done.get(pruner) or study(pruner, args))
        compare_with_first(rows)
        # Written after every study: a crash or a kill keeps the studies already measured.
        out = write_result("pruning", {"settings": settings, "studies": rows})
    print_table(rows)
    print("target: at most 60% of the steps of 'none', best macro-F1 within 1 point")
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
