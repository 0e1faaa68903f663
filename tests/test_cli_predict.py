"""`sentiment-pipeline predict`: texts or a file in, labels and probabilities out."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from hostile_artifacts import run_like_the_old_loader, save_shell_command_model
from sentiment_pipeline.cli import app
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.settings import get_settings
from synthetic import LABELS
from tiny_sklearn import save_tiny_model

runner = CliRunner()
P_COLUMNS = [f"p_{label}" for label in LABELS]


@pytest.fixture
def baseline(project):
    save_tiny_model(project.baseline_model)
    return project.baseline_model


def test_texts_as_arguments_print_labels_and_probabilities(baseline):
    result = runner.invoke(app, ["predict", "awful delayed flight", "great friendly crew"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["text", "label", *P_COLUMNS]
    assert lines[1].split()[3] == "negative"
    assert lines[2].split()[3] == "positive"
    probabilities = [float(v) for v in lines[1].split()[4:]]
    assert len(probabilities) == 3 and sum(probabilities) == pytest.approx(1, abs=0.01)
    assert all(len(v.split(".")[1]) == 3 for v in lines[1].split()[4:])


def test_input_csv_to_output_csv(baseline, tmp_path):
    texts = ["awful delayed flight", 'the gate, "today"', "great friendly crew", "NA"]
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": range(4), "body": texts}).to_csv(source, index=False)
    output = tmp_path / "out" / "preds.csv"
    result = runner.invoke(
        app,
        ["predict", "--input", str(source), "--text-column", "body", "--output", str(output)],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote 4 predictions to {output}" in result.output
    preds = pd.read_csv(output, keep_default_na=False)
    assert list(preds.columns) == ["text", "label", *P_COLUMNS]
    assert preds["text"].tolist() == texts
    assert preds["label"].tolist()[:3] == ["negative", "neutral", "positive"]
    assert preds[P_COLUMNS].sum(axis=1).round(6).tolist() == [1.0] * 4


def test_input_without_the_text_column(baseline, tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"body": ["x"]}).to_csv(source, index=False)
    result = runner.invoke(app, ["predict", "--input", str(source)])
    assert result.exit_code == 1
    assert "expected a column 'text'" in result.output
    assert "pass --text-column" in result.output


def test_placeholder_model_is_a_clear_error(project):
    target = project.distilbert_model
    save_placeholder(target, "distilbert", LABELS, "no CUDA device")
    result = runner.invoke(app, ["predict", "--model", str(target), "good flight"])
    assert result.exit_code == 1
    assert "is a placeholder for model 'distilbert' (skipped: no CUDA device)" in result.output
    assert "not a trained model" in result.output


def test_model_outside_the_project_needs_trust(project, tmp_path, monkeypatch):
    monkeypatch.delenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", raising=False)
    get_settings.cache_clear()
    elsewhere = tmp_path / "downloads" / "model"
    save_tiny_model(elsewhere)
    result = runner.invoke(app, ["predict", "--model", str(elsewhere), "great friendly crew"])
    assert result.exit_code == 1
    assert "refusing to load the scikit-learn artifact" in result.output
    assert "SENTIMENT_PIPELINE_TRUST_ARTIFACTS=true" in result.output
    result = runner.invoke(
        app, ["predict", "--model", str(elsewhere), "--trust", "great friendly crew"]
    )
    assert result.exit_code == 0, result.output
    assert "positive" in result.output


def test_trust_setting_of_the_environment_is_honoured_and_no_trust_overrides_it(
    project, tmp_path, monkeypatch
):
    elsewhere = tmp_path / "downloads" / "model"
    save_tiny_model(elsewhere)
    monkeypatch.setenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", "true")
    get_settings.cache_clear()
    result = runner.invoke(app, ["predict", "--model", str(elsewhere), "great friendly crew"])
    assert result.exit_code == 0, result.output
    assert "positive" in result.output
    result = runner.invoke(
        app, ["predict", "--model", str(elsewhere), "--no-trust", "great friendly crew"]
    )
    assert result.exit_code == 1
    assert "refusing to load the scikit-learn artifact" in result.output


def test_the_shell_command_artifact_in_models_is_refused_and_runs_nothing(project, tmp_path):
    marker = tmp_path / "pwned"
    save_shell_command_model(project.models_dir / "evil", marker)
    # The payload is real: the old loader's way of loading a copy writes the marker.
    run_like_the_old_loader(shutil.copytree(project.models_dir / "evil", tmp_path / "probe"))
    assert marker.is_file()
    marker.unlink()

    for extra in ([], ["--trust"]):
        result = runner.invoke(app, ["predict", "--model", "models/evil", *extra, "hi"])
        assert result.exit_code == 1, result.output
        assert "it holds types outside this pipeline's allow-list" in result.output
        assert "'subprocess.check_output'" in result.output
        assert not marker.exists()


def test_missing_model_and_missing_texts(project):
    result = runner.invoke(app, ["predict", "hello"])
    assert result.exit_code == 1
    assert "no model directory at" in result.output
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 1
    assert "give texts as arguments or --input FILE" in result.output
