"""The whole DAG through `sentiment-pipeline run` (dvc repro) on a tiny project, as a user would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from synthetic import make_comments

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

OVERRIDES = [
    "data.source=raw/comments.csv",
    "data.text_column=text",
    "data.label_column=label",
    "data.min_rows_per_class=5",
    "train.baseline.min_df=1",
    "train.lightgbm.n_trials=2",
    "train.lightgbm.max_estimators=30",
    "train.lightgbm.tfidf.min_df=1",
    "train.distilbert.allow_cpu=true",
    "train.distilbert.n_trials=2",
    "train.distilbert.epochs=[1, 1]",
    "train.distilbert.batch_size=[16]",
    "train.distilbert.max_length=32",
    "register.min_score=0.0",
]


def sh(*cmd: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
@pytest.mark.timeout(900)  # every stage twice through DVC: 80 s on 2 quiet cores
def test_whole_pipeline_through_dvc(tmp_path, tiny_transformer):
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    # dvc.yaml hashes the stage modules; the package itself runs from the installed copy.
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "raw").mkdir()
    make_comments(150, seed=1, raw_labels={"negative": -1, "neutral": 0, "positive": 1}).to_csv(
        root / "raw" / "comments.csv", index=False
    )
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    sh("git", "init", "-q", cwd=root, env=env)
    sh("dvc", "init", "-q", cwd=root, env=env)
    sh("git", "add", "-A", cwd=root, env=env)
    sh("git", "commit", "-qm", "init", cwd=root, env=env)

    overrides = [f"train.distilbert.model_name_or_path={tiny_transformer}", *OVERRIDES]
    set_args = [arg for item in overrides for arg in ("--set", item)]
    first = sh("sentiment-pipeline", "run", *set_args, cwd=root, env=env)
    assert "params.yaml updated" in first.stdout
    # Progress a person sees without --verbose: a line per trial of each tuned stage.
    log = first.stdout + first.stderr
    for model in ("lightgbm", "distilbert"):
        assert f"{model} trial 0 complete (val macro-F1" in log
        assert re.search(rf"{model} trial \d \w+ .*2/2 trials done, best 0\.\d+", log)

    # Every declared out is there, and the transformer was really trained.
    for stage in yaml.safe_load((root / "dvc.lock").read_text())["stages"].values():
        for out in stage.get("outs", []):
            assert (root / out["path"]).exists(), out["path"]
    distilbert = json.loads((root / "models/advanced/distilbert_metrics.json").read_text())
    assert distilbert["status"] == "trained"
    assert distilbert["trials"]["complete"] + distilbert["trials"]["pruned"] == 2
    manifest = json.loads((root / "models/advanced/distilbert_model/model.json").read_text())
    assert manifest["kind"] == "transformers"
    assert (root / "models/advanced/distilbert_model/model.safetensors").is_file()

    comparison = (root / "reports/evaluation/comparison.md").read_text()
    for name in ("baseline", "lightgbm", "distilbert"):
        assert name in comparison
        assert (root / f"reports/evaluation/{name}_test_metrics.json").is_file()
    best = json.loads((root / "models/evaluation/best_model.json").read_text())
    assert best["name"] in {"baseline", "lightgbm", "distilbert"}
    registration = json.loads((root / "reports/registration.json").read_text())
    assert registration["registered"] is True and registration["version"] == "1"
    # `run` ends with what was trained and won, where it is and the command to serve it.
    assert f"Champion: {best['name']} (macro_f1 " in first.stdout
    assert "Registered as models:/sentiment-classifier@champion (version 1)" in first.stdout
    assert first.stdout.rstrip().splitlines()[-1].startswith("Next: sentiment-pipeline serve")

    # The MLflow runs are in the project's local store: one experiment per stage.
    client = MlflowClient(f"sqlite:///{root / 'mlruns.db'}")
    names = {e.name for e in client.search_experiments()}
    for stage in ("ingest", "validate", "prepare", "train_baseline", "train_lightgbm",
                  "train_distilbert", "model_evaluation", "register_model"):
        assert f"sentiment-pipeline/{stage}" in names
    experiment = client.get_experiment_by_name("sentiment-pipeline/train_distilbert")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2
    assert all(
        "val_macro_f1" in r.data.metrics and "learning_rate" in r.data.params for r in children
    )

    # A second run has nothing to do: only the stages that read a data source DVC cannot name
    # look (source, prepare_aspects) and find no change; nothing after them reruns.
    second = sh("sentiment-pipeline", "run", cwd=root, env=env)
    output = second.stdout + second.stderr
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    ran = [name for name in stages if f"Running stage '{name}'" in output]
    assert ran == ["source", "prepare_aspects"], output

    metrics = sh("dvc", "metrics", "show", "--json", cwd=root, env=env)
    shown = json.dumps(json.loads(metrics.stdout))
    for key in ("val_macro_f1", "best_val_macro_f1"):
        assert key in shown
