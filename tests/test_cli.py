"""The CLI: help texts, each command at work, exit codes, and --set written into params.yaml."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sentiment_pipeline.cli import app
from sentiment_pipeline.settings import get_settings
from server_process import call, serving
from synthetic import make_comments
from tiny_sklearn import save_tiny_model

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["run"], ["stage"], ["config", "show"], ["predict"]])
def test_every_command_explains_itself(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_config_show_prints_resolved_yaml(project):
    result = runner.invoke(app, ["config", "show", "--set", "train.distilbert.n_trials=3"])
    assert result.exit_code == 0, result.output
    tree = yaml.safe_load(result.output)
    assert tree["train"]["distilbert"]["n_trials"] == 3
    assert tree["train"]["distilbert"]["enable"] is True


def test_config_show_loads_no_heavy_library(project):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from sentiment_pipeline.cli import app\n"
        "assert CliRunner().invoke(app, ['config', 'show']).exit_code == 0\n"
        "print([m for m in ('torch', 'transformers', 'mlflow', 'optuna', 'sklearn') "
        "if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_config_show_with_params_file(project, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("split:\n  seed: 11\n")
    result = runner.invoke(app, ["config", "show", "--params", str(other)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["split"]["seed"] == 11


@pytest.mark.parametrize("command", [["run"], ["stage", "ingest"], ["config", "show"]])
def test_bad_value_exits_2_before_anything_runs(project, command):
    result = runner.invoke(app, [*command, "--set", "split.test_fraction=1.2"])
    assert result.exit_code == 2
    assert "split.test_fraction: got 1.2" in result.output
    assert not (project.root / "data").exists()
    # nothing was written into params.yaml either
    assert "1.2" not in (project.root / "params.yaml").read_text()


def test_verbose_shows_the_cause_chain_of_an_error(project):
    args = ["stage", "prepare", "--set", "split.test_fraction=1.2"]

    quiet = runner.invoke(app, args)
    loud = runner.invoke(app, [*args, "--verbose"])

    assert quiet.exit_code == loud.exit_code == 2
    assert "error: invalid configuration" in quiet.output and "Traceback" not in quiet.output
    cause, effect = loud.output.split(
        "The above exception was the direct cause of the following exception:"
    )
    assert "pydantic_core._pydantic_core.ValidationError" in cause
    assert "sentiment_pipeline.errors.ConfigError: invalid configuration" in effect
    assert loud.output.rstrip().splitlines()[-1].startswith("  - split.test_fraction: got 1.2")


def test_stage_source_then_ingest_writes_the_raw_dataset(project):
    comments = make_comments(60, raw_labels={"negative": -1, "neutral": 0, "positive": 1})
    comments.rename(columns={"text": "clean_comment", "label": "category"}).to_csv(
        project.root / "comments.csv", index=False
    )
    local = ["--set", "data.source=comments.csv"]

    source = runner.invoke(app, ["stage", "source", *local])
    ingest = runner.invoke(app, ["stage", "ingest", *local])

    assert source.exit_code == 0, source.output
    assert source.output.startswith("source: SourceResult(source='comments.csv', kind='file'")
    assert project.source_stamp.is_file()
    assert ingest.exit_code == 0, ingest.output
    assert ingest.output.startswith("ingest: IngestResult(rows=60, columns=2")
    raw = pd.read_parquet(project.raw_dataset)
    assert len(raw) == 60 and set(raw["label"]) == {"-1", "0", "1"}
    assert "comments.csv" not in (project.root / "params.yaml").read_text()  # --set: this run


def test_unknown_stage(project):
    result = runner.invoke(app, ["stage", "train_svm"])
    assert result.exit_code == 1
    assert "unknown stage 'train_svm'" in result.output
    assert "train_distilbert" in result.output


def test_run_writes_overrides_into_params_yaml_keeping_comments(project, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "sentiment_pipeline.cli.pipeline.subprocess.call", lambda cmd, env: calls.append(cmd) or 0
    )
    (project.root / "dvc.yaml").write_text("stages: {}\n")
    result = runner.invoke(
        app, ["run", "--set", "train.distilbert.enable=false", "--set", "data.source=x.csv"]
    )
    assert result.exit_code == 0, result.output
    text = (project.root / "params.yaml").read_text()
    tree = yaml.safe_load(text)
    assert tree["train"]["distilbert"]["enable"] is False
    assert tree["data"]["source"] == "x.csv"
    assert "# Every tunable of the pipeline" in text  # comments survive
    assert calls and calls[0][-1] == "repro"
    # the same overrides again change nothing
    result = runner.invoke(
        app, ["run", "--set", "train.distilbert.enable=false", "--set", "data.source=x.csv"]
    )
    assert "params.yaml updated" not in result.output


def test_run_reports_a_failing_dvc(project, monkeypatch):
    monkeypatch.setattr("sentiment_pipeline.cli.pipeline.subprocess.call", lambda cmd, env: 3)
    (project.root / "dvc.yaml").write_text("stages: {}\n")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 1
    assert "dvc repro failed (exit 3)" in result.output


def write_run_reports(project, registration: dict) -> None:
    """The report files a finished `dvc repro` leaves: evaluation, champion, registration."""
    project.evaluation_dir.mkdir(parents=True)
    for name, score in (("baseline", 0.7371), ("lightgbm", 0.7243)):
        (project.evaluation_dir / f"{name}_test_metrics.json").write_text(
            json.dumps({"model": name, "status": "evaluated", "macro_f1": score}))
    project.best_model.parent.mkdir(parents=True)
    project.best_model.write_text(json.dumps({
        "name": "baseline", "path": "models/baseline/logistic_baseline", "kind": "sklearn",
        "primary_metric": "macro_f1", "score": 0.7371, "metrics": {"macro_f1": 0.7371},
        "mlflow_run_id": None, "evaluation_run_id": None, "evaluated": ["baseline", "lightgbm"],
        "skipped": {"distilbert": "no CUDA device; set train.distilbert.allow_cpu=true"},
    }))
    project.registration.write_text(json.dumps({
        "registered": True, "model_name": "sentiment-classifier", "champion": "baseline",
        "score": 0.7371, "min_score": 0.5, "version": "3", "alias": "champion",
        "model_uri": "models:/sentiment-classifier@champion", **registration,
    }))


def fake_dvc(project, registration: dict):
    def call(cmd, env):
        print("To track the changes with git, run:\n\n\tgit add dvc.lock")
        write_run_reports(project, registration)
        return 0
    return call


def test_run_ends_with_what_was_trained_the_champion_and_the_next_command(project,
                                                                          monkeypatch):
    # Finding 7 of issue 17: `run` ended with DVC's "git add dvc.lock" hint.
    monkeypatch.setattr("sentiment_pipeline.cli.pipeline.subprocess.call", fake_dvc(project, {}))
    (project.root / "dvc.yaml").write_text("stages: {}\n")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    summary = result.output.split("git add dvc.lock")[1]
    lines = [line.strip() for line in summary.strip().splitlines()]
    assert lines[0] == "Models, scored on the test split (macro_f1):"
    assert "baseline    0.7371  champion" in lines
    assert "lightgbm    0.7243" in lines
    assert "distilbert  skipped: no CUDA device; set train.distilbert.allow_cpu=true" in lines
    assert ("Champion: baseline (macro_f1 0.7371), in models/baseline/logistic_baseline"
            in lines)
    assert "Registered as models:/sentiment-classifier@champion (version 3)" in lines
    assert lines[-1] == "Next: sentiment-pipeline serve   (the champion, on http://127.0.0.1:8000)"


def test_run_says_why_the_champion_was_not_registered_and_how_to_serve_it(project,
                                                                          monkeypatch):
    refused = {"registered": False, "version": None, "alias": None, "model_uri": None,
               "reason": "champion 'baseline' macro_f1 score 0.7371 below register.min_score 0.8"}
    monkeypatch.setattr("sentiment_pipeline.cli.pipeline.subprocess.call",
                        fake_dvc(project, refused))
    (project.root / "dvc.yaml").write_text("stages: {}\n")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    assert ("Not registered: champion 'baseline' macro_f1 score 0.7371 below "
            "register.min_score 0.8") in result.output
    assert result.output.rstrip().endswith(
        "Next: sentiment-pipeline serve --model models/baseline/logistic_baseline")


def test_run_says_which_aspect_model_it_has_or_why_none(project, monkeypatch):
    from sentiment_pipeline.cli.run_summary import aspect_line
    from sentiment_pipeline.io import write_json

    assert aspect_line(project).startswith("Aspect model: not evaluated")
    project.aspect_models_dir.mkdir(parents=True, exist_ok=True)
    write_json(project.aspect_best_model, {"status": "skipped", "reason": "no aspect data"})
    write_json(project.aspect_registration, {"registered": False, "reason": "no champion"})
    assert aspect_line(project) == "Aspect model: none (no aspect data)"
    write_json(project.aspect_best_model, {
        "name": "aspect_model", "path": "models/aspects/aspect_model", "primary_metric":
        "macro_f1", "score": 0.7512})
    write_json(project.aspect_registration, {
        "registered": True, "model_uri": "models:/aspect-classifier@champion"})
    assert aspect_line(project) == (
        "Aspect model: aspect_model (macro_f1 0.7512), in models/aspects/aspect_model, "
        "registered as models:/aspect-classifier@champion")
    monkeypatch.setattr("sentiment_pipeline.cli.pipeline.subprocess.call", fake_dvc(project, {}))
    (project.root / "dvc.yaml").write_text("stages: {}\n")
    result = runner.invoke(app, ["run"])
    assert "Aspect model: aspect_model (macro_f1 0.7512)" in result.output


def test_run_outside_a_project(project):
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 1
    assert "no dvc.yaml here" in result.output


@pytest.mark.slow
def test_tune_worker_uses_the_shared_storage(processed, monkeypatch, tmp_path):
    shared = tmp_path / "shared-optuna.db"
    monkeypatch.delenv("SENTIMENT_PIPELINE_OPTUNA_STORAGE", raising=False)
    overrides = ["train.lightgbm.max_estimators=20", "train.lightgbm.tfidf.min_df=1"]
    args = ["tune", "lightgbm", "--storage", f"sqlite:///{shared}", "--n-trials", "2"]
    result = runner.invoke(app, [*args, *[a for o in overrides for a in ("--set", o)]])
    assert result.exit_code == 0, result.output
    assert shared.is_file() and not processed.optuna_db.exists()
    assert (processed.lightgbm_model / "model.json").is_file()
    first = json.loads(processed.lightgbm_metrics.read_text())
    assert (first["trials"]["complete"], first["trials_run_now"]) == (2, 2)
    # a second worker on the same storage finds the study finished: nothing owed
    again = runner.invoke(app, [*args, *[a for o in overrides for a in ("--set", o)]])
    assert again.exit_code == 0, again.output
    second = json.loads(processed.lightgbm_metrics.read_text())
    assert (second["trials"]["complete"], second["trials_run_now"]) == (2, 0)
    assert second["study_name"] == first["study_name"]
    assert "SENTIMENT_PIPELINE_OPTUNA_STORAGE" not in os.environ


def test_tune_runs_its_stage_with_the_storage_and_the_trials_given(project, monkeypatch):
    seen = []

    def run_stage(name, config, paths):
        seen.append((name, config.train.lightgbm.n_trials, get_settings().optuna_storage))
        return "ran"

    monkeypatch.setattr("sentiment_pipeline.cli.pipeline.run_stage", run_stage)
    storage = f"sqlite:///{project.root / 'shared.db'}"
    result = runner.invoke(app, ["tune", "lightgbm", "--storage", storage, "--n-trials", "3"])

    assert result.exit_code == 0, result.output
    assert result.output == "tune lightgbm: ran\n"
    assert seen == [("train_lightgbm", 3, storage)]
    assert "SENTIMENT_PIPELINE_OPTUNA_STORAGE" not in os.environ  # set for the run only
    assert get_settings().optuna_storage != storage


def test_tune_refuses_an_untuned_model(project):
    result = runner.invoke(app, ["tune", "baseline"])
    assert result.exit_code == 1
    assert "cannot tune 'baseline'" in result.output
    zero = runner.invoke(app, ["tune", "lightgbm", "--n-trials", "0"])
    assert zero.exit_code == 2 and "--n-trials" in zero.output


@pytest.mark.slow
def test_serve_outside_a_project_answers_and_stops_on_sigterm(tmp_path):
    """No params.yaml: the defaults, as predict and analyze; a model folder outside ./models
    needs trust."""
    model = tmp_path / "elsewhere" / "baseline"
    save_tiny_model(model)
    workdir = tmp_path / "not-a-project"
    workdir.mkdir()
    trust = {"SENTIMENT_PIPELINE_TRUST_ARTIFACTS": "true"}

    with serving(["--model", str(model)], cwd=workdir, env=trust) as served:
        health = call(served.port, "/health")
        status, body = call(served.port, "/predict", {"inputs": "great crew, thanks"})
        served.process.send_signal(signal.SIGTERM)
        code = served.process.wait(30)

    assert health[0] == 200
    assert status == 200
    answer = json.loads(body)
    assert {p["label"] for p in answer} == {"negative", "neutral", "positive"}
    assert code == 0, served.log.read_text()
    assert sorted(p.name for p in workdir.iterdir()) == [served.log.name]  # nothing written
