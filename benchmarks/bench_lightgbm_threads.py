"""Benchmark 6: LightGBM threads per trial and parallel trials, against today's 1 x 1.

The train_lightgbm stage itself runs the same small study (same seed, trial count and search
space, a fresh Optuna storage each time) on the airline split with each setting of
`train.lightgbm.threads` x `train.lightgbm.parallel_trials`: today's (1 x 1), `auto` (what the
machine gets by default), 2 threads x 1 trial and 1 thread x 2 trials. It reports the stage's
wall time, the study's own time, the summed trial time and the best validation macro-F1, with the
load average around each arm (other work on the machine makes these noisy).

Arms after the first are stopped from starting trials after `--cap` times the first arm's wall
time (an arm that slow has lost anyway); its `trials` then says how many finished.

    python benchmarks/bench_lightgbm_threads.py [--trials 4] [--rounds 1] [--cap 3]
        [--max-estimators 200]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time

import pandas as pd

from common import airline_project, print_table, write_result
from sentiment_pipeline import machine
from sentiment_pipeline.logs import configure_logging
from sentiment_pipeline.models import train_lightgbm as lt
from sentiment_pipeline.stages import run_stage

ARMS = {
    "today (1 x 1)": ("1", "1"),
    "auto": ("auto", "auto"),
    "2 threads x 1 trial": ("2", "1"),
    "1 thread x 2 trials": ("1", "2"),
}


def fresh(paths) -> None:  # noqa: ANN001
    """Forget the previous arm's study (the settings are not part of the study key)."""
    paths.optuna_db.unlink(missing_ok=True)
    shutil.rmtree(paths.root / ".optuna", ignore_errors=True)
    for out in (paths.lightgbm_model, paths.lightgbm_results):
        shutil.rmtree(out, ignore_errors=True)
    paths.lightgbm_metrics.unlink(missing_ok=True)


def arm(name: str, threads: str, trials: str, args: argparse.Namespace,
        timeout: float | None) -> dict:
    overrides = [
        f"train.lightgbm.n_trials={args.trials}",
        f"train.lightgbm.max_estimators={args.max_estimators}",
        f"train.lightgbm.threads={threads}",
        f"train.lightgbm.parallel_trials={trials}",
    ]
    if timeout is not None:
        overrides.append(f"train.lightgbm.timeout={timeout:.0f}")
    paths, manager = airline_project("lightgbm-threads", *overrides)
    use = lt.parallelism(manager.config.train.lightgbm)
    fresh(paths)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    run_stage("train_lightgbm", manager.config, paths)
    wall = time.perf_counter() - start
    summary = json.loads(paths.lightgbm_metrics.read_text())
    table = pd.read_csv(paths.lightgbm_results / "trials.csv")
    finished = int(summary["trials"]["complete"] + summary["trials"]["pruned"])
    return {
        "setting": name,
        "threads": use.threads,
        "parallel_trials": use.trials,
        "trials": finished,
        "pruned": int(summary["trials"]["pruned"]),
        "stage_wall_s": round(wall, 1),
        "study_wall_s": round(float(summary["wall_seconds"]), 1),
        "s_per_trial": round(wall / max(finished, 1), 2),
        "summed_trial_s": round(float(table["duration_s"].sum()), 1),
        "best_val_macro_f1": round(float(summary["best_val_macro_f1"]), 4),
        "load_1min_before": round(load_before, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--max-estimators", type=int, default=200,
                        help="boosting rounds cap per trial (the stage's default is 1000)")
    parser.add_argument("--rounds", type=int, default=1, help="times each arm runs, interleaved")
    parser.add_argument("--cap", type=float, default=3.0,
                        help="later arms start no trial after cap x the first arm's wall time")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    args = parser.parse_args()
    configure_logging()
    logging.getLogger("sentiment_pipeline").setLevel(logging.WARNING)

    rows: list[dict] = []
    timeout = None
    for round_ in range(args.rounds):
        for name in args.arms:
            row = {"round": round_ + 1, **arm(name, *ARMS[name], args, timeout)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if timeout is None:
                timeout = args.cap * row["stage_wall_s"]
    print_table(rows)
    by = {}
    for row in rows:
        by.setdefault(row["setting"], []).append(row["s_per_trial"])
    medians = {name: sorted(v)[len(v) // 2] for name, v in by.items()}
    auto_rows = [r for r in rows if r["setting"] == "auto"]
    out = write_result(
        "lightgbm_threads",
        {
            "command": "python benchmarks/bench_lightgbm_threads.py "
            f"--trials {args.trials} --rounds {args.rounds} --cap {args.cap} "
            f"--max-estimators {args.max_estimators}",
            "usable_cores": machine.usable_cores(),
            "auto_rule": {str(c): lt.auto_parallelism(c) for c in (1, 2, 4, 8, 16, 32)},
            "n_trials": args.trials,
            "max_estimators": args.max_estimators,
            "rows": rows,
            "median_s_per_trial": medians,
            "auto_setting": (
                {"threads": auto_rows[0]["threads"],
                 "parallel_trials": auto_rows[0]["parallel_trials"]}
                if auto_rows else None
            ),
            # On <= 2 cores auto is today's 1 x 1: any difference in time is the machine's load.
            "auto_same_setting_as_today": bool(auto_rows) and (
                (auto_rows[0]["threads"], auto_rows[0]["parallel_trials"]) == (1, 1)
            ),
            "auto_vs_today": (
                round(medians["auto"] / medians["today (1 x 1)"], 3)
                if "auto" in medians and "today (1 x 1)" in medians else None
            ),
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
