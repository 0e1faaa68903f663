"""Benchmark 2: the same Optuna study with the median pruner and without a pruner.

Both studies run the train_distilbert stage itself (same seed, trial count, search space and
subsample of the airline split; all-MiniLM-L6-v2 as the checkpoint) and report the optimizer
steps of all trials, the wall time and the best validation macro-F1.

    python benchmarks/bench_pruning.py [--trials 8] [--rows 2000] [--eval-steps 40]
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from common import airline_project, minilm_path, print_table, write_result
from sentiment_pipeline.stages import configure_logging, run_stage


def study(pruner: str, args: argparse.Namespace) -> dict:
    paths, manager = airline_project(
        f"pruning-{pruner}",
        f"train.distilbert.model_name_or_path={minilm_path()}",
        "train.distilbert.allow_cpu=true",
        f"train.distilbert.pruner={pruner}",
        f"train.distilbert.n_trials={args.trials}",
        f"train.distilbert.max_train_samples={args.rows}",
        f"train.distilbert.max_eval_samples={args.val_rows}",
        f"train.distilbert.eval_steps={args.eval_steps}",
        "train.distilbert.epochs=[1, 3]",
        "train.distilbert.lr=[1.0e-5, 1.0e-4]",
        "train.distilbert.batch_size=[16, 32]",
        "train.distilbert.eval_batch_size=128",
    )
    start = time.perf_counter()
    run_stage("train_distilbert", manager, paths)
    wall = time.perf_counter() - start
    trials = pd.read_csv(paths.distilbert_results / "trials.csv")
    summary = json.loads((paths.distilbert_results / "study.json").read_text())
    return {
        "pruner": pruner,
        "trials": len(trials),
        "pruned": int((trials["state"] == "pruned").sum()),
        "optimizer_steps": int(trials["optimizer_steps"].sum()),
        "wall_s": round(wall, 1),
        "best_val_macro_f1": round(float(summary["best_value"]), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--val-rows", type=int, default=500)
    parser.add_argument("--eval-steps", type=int, default=40)
    args = parser.parse_args()
    configure_logging()

    rows = [study("none", args), study("median", args)]
    steps_ratio = rows[1]["optimizer_steps"] / rows[0]["optimizer_steps"]
    f1_gap = rows[0]["best_val_macro_f1"] - rows[1]["best_val_macro_f1"]
    print_table(rows)
    print(f"steps with pruning: {steps_ratio:.0%} of without (target <= 60%); "
          f"best macro-F1 gap {f1_gap * 100:+.2f} points (target within 1)")
    out = write_result(
        "pruning",
        {
            "settings": vars(args),
            "studies": rows,
            "steps_ratio": round(steps_ratio, 3),
            "best_macro_f1_gap_points": round(f1_gap * 100, 2),
        },
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
