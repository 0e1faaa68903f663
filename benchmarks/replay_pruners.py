"""Replay a finished study without a pruner under other pruners (no training).

Every trial of the study that bench_pruning.py ran without a pruner reported its validation
macro-F1 at each evaluation. Feeding those curves, trial by trial and in the same order, to a
fresh Optuna study with a pruner shows which trials that pruner would have stopped, after how
many optimizer steps, and which best value would have been left. It costs seconds, where a real
pruned study costs a quarter of an hour, so several pruner settings can be compared; the chosen
one is then confirmed by a real run (bench_pruning.py). A replay keeps each trial's parameters:
it ignores that a sampler past its random start-up would have proposed others.

The curves are committed in results/pruning_curves.json, so the replay needs neither the study
nor the transformer code. --from-study extracts them again from a study bench_pruning.py ran
(that needs the transformer extra: the optimizer step of each report and the chance floor are
computed with the stage's own functions).

    python benchmarks/replay_pruners.py [--from-study benchmarks/.work/pruning-none]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna

from common import REPO, RESULTS, compare_with_first, print_table, write_result
from sentiment_pipeline.tuning.pruning import ChanceFloorPruner

CURVES = RESULTS / "pruning_curves.json"
GET_CURVES = (
    "run `python benchmarks/bench_pruning.py --pruners` (the unpruned study, about 30 min on "
    "2 CPU cores), then `python benchmarks/replay_pruners.py --from-study "
    "benchmarks/.work/pruning-none`"
)
# The epochs parameter of a study: named as the Trainer takes it since the tuning core, "epochs"
# in studies made before (such as the recorded one).
EPOCH_PARAMS = ("num_train_epochs", "epochs")


@dataclass(frozen=True)
class Curve:
    """One finished trial: its parameters, its reports (in order) and the optimizer step of each."""

    number: int
    params: dict[str, Any]
    values: list[float]
    steps: list[int]


@dataclass(frozen=True)
class Curves:
    """The complete trials of an unpruned study, in the order they ran, and its settings."""

    study_name: str
    study_dir: str
    settings: dict[str, int]
    chance_floor: float
    curves: list[Curve]


def extract(study_dir: Path, rows: int, val_rows: int, evals_per_epoch: int, seed: int) -> Curves:
    """The curves of the (only) study in study_dir, which bench_pruning.py ran without a pruner."""
    import pandas as pd

    db, val_path = study_dir / "optuna.db", study_dir / "data" / "processed" / "val.parquet"
    for path in (db, val_path):
        if not path.is_file():
            raise SystemExit(f"{path} not found: not a study bench_pruning.py ran; {GET_CURVES}")
    try:
        from sentiment_pipeline.models.distilbert.encoding import subsample
        from sentiment_pipeline.models.distilbert.trainer import evaluation_steps
    except ImportError as exc:
        raise SystemExit(
            f"--from-study needs the transformer stage's code ({exc}); "
            "pip install -e '.[pipeline,transformers]'"
        ) from exc
    from sentiment_pipeline.tuning.pruning import chance_macro_f1

    storage = f"sqlite:///{db}"
    summaries = optuna.study.get_all_study_summaries(storage)
    if len(summaries) != 1:
        names = [s.study_name for s in summaries]
        raise SystemExit(f"expected one study in {db}, found {len(summaries)}: {names}")
    study = optuna.load_study(study_name=summaries[0].study_name, storage=storage)
    states = {t.state for t in study.get_trials(deepcopy=False)}
    if optuna.trial.TrialState.PRUNED in states:
        raise SystemExit(f"{db} holds pruned trials: the replay needs the unpruned study")
    if states & {optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING}:
        raise SystemExit(f"{db} holds unfinished trials; finish the study first: {GET_CURVES}")

    curves, max_epochs = [], 0
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        values = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
        epoch_param = next(name for name in EPOCH_PARAMS if name in trial.params)
        epochs = int(trial.params[epoch_param])
        optimizer_steps = int(trial.user_attrs["optimizer_steps"])
        steps = evaluation_steps(optimizer_steps, epochs, evals_per_epoch)
        if len(steps) != len(values):
            raise SystemExit(
                f"trial {trial.number} reported {len(values)} times, but {epochs} epochs at "
                f"--evals-per-epoch {evals_per_epoch} make {len(steps)} evaluations: "
                "give the study's evals_per_epoch"
            )
        max_epochs = max(max_epochs, int(trial.distributions[epoch_param].high))
        curves.append(Curve(trial.number, trial.params, values, steps))
    if not curves:
        raise SystemExit(f"no complete trial in {db}; finish the study first: {GET_CURVES}")

    val = pd.read_parquet(val_path)
    settings = {
        "trials": len(curves),
        "rows": rows,
        "val_rows": val_rows,
        "evals_per_epoch": evals_per_epoch,
        "max_epochs": max_epochs,
        "seed": seed,
    }
    floor = chance_macro_f1(subsample(val, val_rows, seed)["label"])
    return Curves(study.study_name, study_dir.name, settings, floor, curves)


def read_curves(path: Path) -> Curves:
    if not path.is_file():
        raise SystemExit(
            f"{path.relative_to(REPO)} not found: it holds the curves of the unpruned study; "
            f"to make it, {GET_CURVES}"
        )
    try:
        data = json.loads(path.read_text())
        return Curves(**{**data, "curves": [Curve(**c) for c in data["curves"]]})
    except (ValueError, TypeError, KeyError) as exc:
        raise SystemExit(f"{path} is not a curves file ({exc!r}); {GET_CURVES}") from exc


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
    parser.add_argument(
        "--from-study", type=Path, metavar="DIR",
        help=f"extract the curves of the unpruned study in DIR into {CURVES.relative_to(REPO)} "
        "first (e.g. benchmarks/.work/pruning-none)",
    )
    parser.add_argument("--rows", type=int, default=2000, help="with --from-study: its train rows")
    parser.add_argument("--val-rows", type=int, default=500, help="with --from-study: val rows")
    parser.add_argument("--evals-per-epoch", type=int, default=3, help="with --from-study")
    parser.add_argument("--seed", type=int, default=42, help="with --from-study: its seed")
    args = parser.parse_args()
    if args.from_study:
        found = extract(args.from_study, args.rows, args.val_rows, args.evals_per_epoch, args.seed)
        CURVES.write_text(json.dumps(asdict(found), indent=2, ensure_ascii=False) + "\n")
        print(f"curves of {len(found.curves)} trials of {found.study_name} written to {CURVES}")
    curves = read_curves(CURVES)
    settings = curves.settings
    rows = []
    for name, pruner in candidates(
        settings["max_epochs"], settings["evals_per_epoch"], curves.chance_floor
    ).items():
        rows.append({"pruner": name, **replay(curves.curves, pruner)})
    compare_with_first(rows)
    print_table(rows)
    out = write_result(
        "pruning_replay",
        {
            "study": curves.study_dir,
            "study_name": curves.study_name,
            "curves": CURVES.name,
            "trials": len(curves.curves),
            "evals_per_epoch": settings["evals_per_epoch"],
            "chance_floor": round(curves.chance_floor, 4),
            "replays": rows,
        },
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
