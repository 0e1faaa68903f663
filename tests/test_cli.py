"""The CLI: help texts, config show, exit codes, and --set written into params.yaml for DVC."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from sentiment_pipeline.cli import app

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


def test_run_outside_a_project(project):
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 1
    assert "no dvc.yaml here" in result.output


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


def test_tune_refuses_an_untuned_model(project):
    result = runner.invoke(app, ["tune", "baseline"])
    assert result.exit_code == 1
    assert "cannot tune 'baseline'" in result.output
    zero = runner.invoke(app, ["tune", "lightgbm", "--n-trials", "0"])
    assert zero.exit_code == 2 and "--n-trials" in zero.output
