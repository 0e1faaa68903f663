"""The result files every tuned stage writes: one metrics schema, trials.csv, study plots."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import optuna
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from sentiment_pipeline.io import atomic_dir, write_json
from sentiment_pipeline.tuning.study import state_name


class TuningSummary(BaseModel):
    """`<model>_metrics.json` of every tuned stage (the same keys, so `dvc metrics show` lines
    the stages up), also `study.json` in its results folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["trained", "skipped", "adopted"]  # adopted: a model from elsewhere, as is
    reason: str | None = Field(None, description="Why the stage skipped training.")
    study_name: str | None = None
    storage: str | None = Field(None, description="The Optuna storage, password hidden.")
    best_val_macro_f1: float | None = None
    best_val_accuracy: float | None = None
    best_params: dict[str, Any] | None = None
    best_trial: int | None = None
    trials: dict[str, int] = Field(default_factory=dict, description="Trial counts by state.")
    trials_run_now: int = Field(0, description="Trials this run started.")
    n_trials: int | None = Field(None, description="Finished trials the study is owed.")
    mlflow_run_id: str | None = Field(None, description="The stage's MLflow parent run.")
    wall_seconds: float | None = None
    train_samples_per_second: float | None = Field(
        None, description="Training throughput of the best trial, where it applies."
    )
    details: dict[str, Any] = Field(default_factory=dict, description="Stage-specific facts.")


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, duration, its params and what it recorded."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        duration = trial.user_attrs.get("duration_s")
        if duration is None and trial.datetime_start and trial.datetime_complete:
            duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
        recorded = {
            k: v for k, v in trial.user_attrs.items()
            if k != "duration_s" and isinstance(v, str | int | float | bool | type(None))
        }
        rows.append(
            {
                "number": trial.number,
                "state": state_name(trial.state),
                "value": trial.value,
                "duration_s": duration,
                **{f"params_{k}": v for k, v in trial.params.items()},
                **recorded,
            }
        )
    return pd.DataFrame(rows)


def save_plots(study: optuna.Study, directory: Path) -> dict[str, str]:
    """Optimisation history and parameter importances as PNG; returns file -> what happened."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    notes: dict[str, str] = {}
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    varying = {k for k in complete[0].params if len({str(t.params.get(k)) for t in complete}) > 1}
    plots = {"optimization_history.png": ovm.plot_optimization_history}
    if len(complete) >= 2 and varying:
        plots["param_importances.png"] = ovm.plot_param_importances
    else:
        notes["param_importances.png"] = "skipped: needs 2 complete trials with varying params"
    for file, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as exc:
                notes[file] = f"skipped: {exc}"
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.savefig(directory / file, dpi=100, bbox_inches="tight")
        plt.close(figure)
        notes[file] = "written"
    return notes


def write_results(study: optuna.Study, target: Path, summary: TuningSummary) -> None:
    """Atomically write the results folder: trials.csv, study.json and the plots."""
    with atomic_dir(target) as tmp:
        trials_frame(study).to_csv(tmp / "trials.csv", index=False)
        plots = save_plots(study, tmp)
        write_json(tmp / "study.json", {**summary.model_dump(mode="json"), "plots": plots})


def write_skipped(results_dir: Path, metrics_path: Path, reason: str) -> TuningSummary:
    """The results folder and metrics of a stage that skipped training (DVC outs stay whole)."""
    summary = TuningSummary(status="skipped", reason=reason)
    with atomic_dir(results_dir) as tmp:
        write_json(tmp / "study.json", summary.model_dump(mode="json"))
    write_json(metrics_path, summary.model_dump(mode="json"))
    return summary
