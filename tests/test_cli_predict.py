"""`sentiment-pipeline predict`: texts or a file in, labels and probabilities out."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from hostile_artifacts import run_like_the_old_loader, save_shell_command_model
from sentiment_pipeline.cli import app
from sentiment_pipeline.models.artifacts.manifest import ArtifactError, read_manifest
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.registry import resolve
from sentiment_pipeline.registry.lookup import RegisteredVersion
from sentiment_pipeline.registry.resolve import ResolvedModel
from sentiment_pipeline.settings import get_settings
from synthetic import LABELS
from tiny_sklearn import save_tiny_model

runner = CliRunner()
P_COLUMNS = [f"p_{label}" for label in LABELS]
BASELINE = ["--model", "models/baseline/logistic_baseline"]


@pytest.fixture
def baseline(project):
    save_tiny_model(project.baseline_model)
    return project.baseline_model


@pytest.fixture
def resolver_calls(monkeypatch, baseline):
    """A registry stand-in: every spec resolves to the project's baseline; calls recorded."""
    calls = []

    def fake(spec, *, model_name, paths, trust=None, timeout_s=10.0):
        calls.append((spec, model_name, paths.root))
        return ResolvedModel(path=baseline, manifest=read_manifest(baseline), name=model_name,
                             source=spec or "champion", version="3", trusted=True)

    monkeypatch.setattr(resolve, "resolve_model", fake)
    return calls


def test_texts_as_arguments_print_labels_and_probabilities(baseline):
    result = runner.invoke(
        app, ["predict", *BASELINE, "awful delayed flight", "great friendly crew"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["text", "label", *P_COLUMNS]
    assert lines[1].split()[3] == "negative"
    assert lines[2].split()[3] == "positive"
    probabilities = [float(v) for v in lines[1].split()[4:]]
    assert len(probabilities) == 3 and sum(probabilities) == pytest.approx(1, abs=0.01)
    assert all(len(v.split(".")[1]) == 3 for v in lines[1].split()[4:])


def test_input_csv_to_output_csv(baseline, tmp_path):
    texts = ["awful delayed flight", 'the gate, "today"', "great friendly crew", "NA", ""]
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": range(5), "body": texts}).to_csv(source, index=False)
    output = tmp_path / "out" / "preds.csv"
    result = runner.invoke(
        app,
        ["predict", *BASELINE, "--input", str(source), "--text-column", "body",
         "--output", str(output), "--chunk-size", "2"],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote 5 predictions to {output} (1 blank texts, " in result.output
    preds = pd.read_csv(output, keep_default_na=False)
    assert list(preds.columns) == ["id", "body", "label", "score", *P_COLUMNS, "blank"]
    assert preds["id"].tolist() == list(range(5))
    assert preds["body"].tolist() == texts
    assert preds["label"].tolist()[:3] == ["negative", "neutral", "positive"]
    assert preds[P_COLUMNS].sum(axis=1).round(6).tolist() == [1.0] * 5
    assert preds["blank"].tolist() == [False, False, False, False, True]


@pytest.mark.parametrize("target", ["preds.parquet", "preds.jsonl"])
def test_input_parquet_to_other_formats(baseline, tmp_path, target):
    source = tmp_path / "in.parquet"
    pd.DataFrame({"text": ["great friendly crew", None, "awful delayed flight"]}).to_parquet(source)
    output = tmp_path / target
    result = runner.invoke(
        app, ["predict", *BASELINE, "-i", str(source), "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    preds = pd.read_parquet(output) if target.endswith("parquet") else pd.read_json(
        output, lines=True
    )
    assert preds["label"].tolist()[::2] == ["positive", "negative"]
    assert preds["blank"].tolist() == [False, True, False]


def test_input_without_the_text_column(baseline, tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"body": ["x"], "id": [1]}).to_csv(source, index=False)
    output = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["predict", *BASELINE, "--input", str(source), "--output", str(output)]
    )
    assert result.exit_code == 1
    assert f"expected a column 'text' in {source}, found ['body', 'id']" in result.output
    assert "pass --text-column" in result.output
    assert not output.exists()


def test_bad_outputs_are_refused_before_the_model_loads(project, tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": ["x"]}).to_csv(source, index=False)
    (tmp_path / "out").mkdir()
    no_model = ["--model", "models/none"]  # never reached: the output is checked first
    result = runner.invoke(
        app, ["predict", *no_model, "--input", str(source), "--output", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert f"--output {tmp_path / 'out'} is a directory; give a file name" in result.output
    result = runner.invoke(
        app, ["predict", *no_model, "-i", str(source), "-o", str(tmp_path / "p.xlsx")]
    )
    assert result.exit_code == 1
    assert "accepted: .parquet, .pq, .csv, .tsv, .jsonl, .ndjson" in result.output
    result = runner.invoke(
        app, ["predict", *no_model, "-i", str(tmp_path / "missing.csv"), "-o", "p.csv"]
    )
    assert result.exit_code == 1
    assert f"--input {tmp_path / 'missing.csv'}: no file there" in result.output
    result = runner.invoke(app, ["predict", *no_model, "-i", str(source)])
    assert result.exit_code == 1
    assert "--input needs --output FILE" in result.output
    result = runner.invoke(app, ["predict", *no_model, "-i", str(source), "-o", "p.csv", "hi"])
    assert result.exit_code == 1
    assert "give texts as arguments or --input FILE, not both" in result.output


def test_invalid_utf8_is_a_message_not_a_traceback(baseline, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,text\n1,fine\n2,caf\xe9\n")
    result = runner.invoke(app, ["predict", *BASELINE, "-i", str(source), "-o", "p.csv"])
    assert result.exit_code == 1
    assert f"error: {source} is not valid UTF-8: line 3 holds bytes b'\\xe9'" in result.output
    assert "Traceback" not in result.output


def test_an_interruption_leaves_no_output(baseline, tmp_path, monkeypatch):
    from sentiment_pipeline.models.artifacts.sklearn_model import SklearnModel

    source = tmp_path / "in.csv"
    pd.DataFrame({"text": [f"great crew {i}" for i in range(50)]}).to_csv(source, index=False)
    calls = []
    original = SklearnModel.predict_proba

    def interrupted(self, texts):
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, texts)

    monkeypatch.setattr(SklearnModel, "predict_proba", interrupted)
    output = tmp_path / "out" / "preds.parquet"
    result = runner.invoke(
        app, ["predict", *BASELINE, "-i", str(source), "-o", str(output), "--chunk-size", "7"]
    )
    assert result.exit_code != 0
    assert calls == [7, 7, 7]
    assert list(output.parent.iterdir()) == []


def test_texts_with_output_file(baseline, tmp_path):
    output = tmp_path / "preds.jsonl"
    result = runner.invoke(
        app, ["predict", *BASELINE, "-o", str(output), "great friendly crew", "  "]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote 2 predictions to {output}" in result.output
    preds = pd.read_json(output, lines=True)
    assert list(preds.columns) == ["text", "label", "score", *P_COLUMNS, "blank"]
    assert preds["blank"].tolist() == [False, True]


def test_default_model_is_the_champion_of_the_configured_name(project, resolver_calls):
    result = runner.invoke(app, ["predict", "great friendly crew"])
    assert result.exit_code == 0, result.output
    assert "positive" in result.output
    assert resolver_calls == [(None, "sentiment-classifier", project.root)]
    result = runner.invoke(
        app, ["predict", "--set", "register.model_name=tweets", "great friendly crew"]
    )
    assert result.exit_code == 0, result.output
    assert resolver_calls[-1] == (None, "tweets", project.root)


@pytest.mark.parametrize(
    "spec", ["models:/sentiment-classifier@champion", "models:/sentiment-classifier/3"]
)
def test_registry_specs_go_through_the_resolver(project, resolver_calls, tmp_path, spec):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "great friendly crew"}\n{"text": "awful delayed flight"}\n')
    output = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["predict", "--model", spec, "--input", str(source), "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert resolver_calls == [(spec, "sentiment-classifier", project.root)]
    assert pd.read_csv(output)["label"].tolist() == ["positive", "negative"]


def test_a_verified_registry_download_loads_without_trust(project, tmp_path, monkeypatch):
    monkeypatch.delenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", raising=False)
    get_settings.cache_clear()
    downloaded = tmp_path / "cache" / "registry" / "1"  # outside the project's models/
    save_tiny_model(downloaded)
    registered = RegisteredVersion("sentiment-classifier", "1", "models:/x/1", {})
    # the registry answers, and the cache hands out the folder as verified against its hashes
    monkeypatch.setattr(resolve, "lookup", lambda store, spec, **kw: registered)
    monkeypatch.setattr(resolve, "fetch", lambda *args: {"model_dir": downloaded})
    spec = ["--model", "models:/sentiment-classifier/1"]
    result = runner.invoke(app, ["predict", *spec, "great friendly crew"])
    assert result.exit_code == 0, result.output
    assert "positive" in result.output
    result = runner.invoke(app, ["predict", *spec, "--no-trust", "great friendly crew"])
    assert result.exit_code == 1
    assert "refusing to load the scikit-learn artifact" in result.output


def test_an_unresolvable_spec_is_one_clear_error(project, monkeypatch):
    def unreachable(spec, *, model_name, paths, trust=None, timeout_s=10.0):
        raise ArtifactError(f"cannot resolve {spec}: tried the registry at sqlite:///mlruns.db")

    monkeypatch.setattr(resolve, "resolve_model", unreachable)
    result = runner.invoke(app, ["predict", "--model", "models:/nope@champion", "hi"])
    assert result.exit_code == 1
    assert "error: cannot resolve models:/nope@champion: tried the registry" in result.output


def test_placeholder_model_is_a_clear_error(project):
    target = project.distilbert_model
    save_placeholder(target, "distilbert", LABELS, "no CUDA device")
    result = runner.invoke(app, ["predict", "--model", str(target), "good flight"])
    assert result.exit_code == 1
    assert "placeholder" in result.output
    assert "no CUDA device" in result.output


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
    result = runner.invoke(app, ["predict", "--model", "models/nothing_here", "hello"])
    assert result.exit_code == 1
    assert "models/nothing_here" in result.output
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 1
    assert "give texts as arguments or --input FILE" in result.output
