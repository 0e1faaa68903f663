"""Replay a finished study without a pruner under other pruners (no training).

Every trial of the study that bench_pruning.py ran without a pruner reported its validation
macro-F1 at each evaluation. Feeding those curves, trial by trial and in the same order, to a
fresh Optuna study with a pruner shows which trials that pruner would have stopped, after how
many optimizer steps, and which best value would have been left. It costs seconds, where a real
pruned study costs a quarter of an hour, so several pruner settings can be compared; the chosen
one is then confirmed by a real run (bench_pruning.py). A replay keeps each trial's parameters:
it ignores that a sampler past its random start-up would have proposed others.

    python benchmarks/replay_pruners.py [--study-dir benchmarks/.work/pruning-none]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd

from common import WORK, compare_with_first, print_table, write_result
from sentiment_pipeline.models.distilbert_data import chance_macro_f1, evaluation_steps, subsample
from sentiment_pipeline.pruning import ChanceFloorPruner


@dataclass(frozen=True)
class Curve:
    """One finished trial: its reports (in order) and the optimizer step of each."""

    number: int
    values: list[float]
    steps: list[int]


def load_curves(study_dir: Path, evals_per_epoch: int) -> list[Curve]:
    """The complete trials of the (only) study in study_dir, in the order they ran."""
    storage = f"sqlite:///{study_dir / 'optuna.db'}"
    (summary,) = optuna.study.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    curves = []
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        reports = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
        epochs = int(trial.params["epochs"])
        steps = evaluation_steps(int(trial.user_attrs["optimizer_steps"]), epochs, evals_per_epoch)
        curves.append(Curve(trial.number, reports, steps))
    return curves


def replay(curves: list[Curve], pruner: optuna.pruners.BasePruner) -> dict:
    """Steps, pruned trials and best value had `pruner` watched these curves."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=pruner, study_name="replay")
    steps, pruned, best = 0, [], float("-inf")
    for curve in curves:
        trial = study.ask()
        for index, value in enumerate(curve.values, start=1):
            trial.report(value, step=index)
            if index < len(curve.values) and trial.should_prune():
                steps += curve.steps[index - 1]
                pruned.append(curve.number)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            steps += curve.steps[-1]
            best = max(best, curve.values[-1])
            study.tell(trial, curve.values[-1])
    return {"optimizer_steps": steps, "pruned_trials": pruned, "best_val_macro_f1": round(best, 4)}


def candidates(
    max_epochs: int, evals_per_epoch: int, floor: float
) -> dict[str, optuna.pruners.BasePruner]:
    """Optuna's pruners, plain and behind the stage's chance floor (one epoch of warm-up)."""
    P = optuna.pruners
    max_resource = max_epochs * evals_per_epoch
    plain = {
        "median": lambda: P.MedianPruner(n_startup_trials=2),
        "median (1 start-up trial)": lambda: P.MedianPruner(n_startup_trials=1),
        "keep top 33 %": lambda: P.PercentilePruner(33.0, n_startup_trials=2),
        "successive halving (η 3)": lambda: P.SuccessiveHalvingPruner(1, reduction_factor=3),
        "hyperband (η 3)": lambda: P.HyperbandPruner(1, max_resource, reduction_factor=3),
    }
    rows: dict[str, optuna.pruners.BasePruner] = {"none": P.NopPruner()}
    for name, make in plain.items():
        rows[name] = make()
        rows[f"{name} + chance floor"] = ChanceFloorPruner(make(), floor, evals_per_epoch)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study-dir", type=Path, default=WORK / "pruning-none")
    parser.add_argument("--evals-per-epoch", type=int, default=3, help="as in that study")
    parser.add_argument("--max-epochs", type=int, default=4, help="upper epoch bound there")
    parser.add_argument("--val-rows", type=int, default=500, help="validation rows there")
    parser.add_argument("--seed", type=int, default=42, help="seed there")
    args = parser.parse_args()
    curves = load_curves(args.study_dir, args.evals_per_epoch)
    val = pd.read_parquet(args.study_dir / "data" / "processed" / "val.parquet")
    floor = chance_macro_f1(subsample(val, args.val_rows, args.seed)["label"])
    rows = []
    for name, pruner in candidates(args.max_epochs, args.evals_per_epoch, floor).items():
        rows.append({"pruner": name, **replay(curves, pruner)})
    compare_with_first(rows)
    print_table(rows)
    out = write_result(
        "pruning_replay",
        {
            "study": args.study_dir.name,
            "trials": len(curves),
            "evals_per_epoch": args.evals_per_epoch,
            "chance_floor": round(floor, 4),
            "replays": rows,
        },
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
