"""The aspect model's export, evaluation (with the majority and the pair suite) and registration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.config.export import OnnxExportConfig
from sentiment_pipeline.config.register import RegisterConfig
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.evaluation import behavioural, evaluate_aspects
from sentiment_pipeline.evaluation.aspect_suite import ASPECT_TEST_TYPES, build_aspect_suite
from sentiment_pipeline.models import export_aspects_onnx
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, read_manifest
from sentiment_pipeline.models.artifacts.pairs import pair_documents
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.models.artifacts.sklearn_model import save_sklearn
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import register_aspects
from sentiment_pipeline.registry.opening import open_model
from synthetic import LABELS

ROWS = [
    ("the audio is terrible but the video is great", "audio", 0),
    ("the audio is terrible but the video is great", "video", 2),
    ("great screen, awful keyboard", "screen", 2),
    ("great screen, awful keyboard", "keyboard", 0),
    ("it has a screen and a keyboard", "screen", 1),
    ("it has a screen and a keyboard", "keyboard", 1),
    ("lovely host, bad sound", "host", 2),
    ("lovely host, bad sound", "sound", 0),
]


def _splits(paths: ProjectPaths, rows: list[tuple[str, str, int]]) -> None:
    paths.aspect_data_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["text", "aspect", "label"]).astype({"label": "int64"})
    for name in ("train", "val", "test"):
        frame.to_parquet(paths.aspects_split(name), index=False)
    paths.aspects_labels.write_text(json.dumps(LABELS))


def _pair_baseline(target: Path) -> None:
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(C=100))])
    pipeline.fit(pair_documents([(t, a) for t, a, _ in ROWS * 3]), [y for *_, y in ROWS * 3])
    save_sklearn(target, pipeline, ModelManifest(name="pair_baseline", kind="sklearn",
                                                 labels=LABELS, input="pair"))


@pytest.fixture
def aspects(project: ProjectPaths) -> ProjectPaths:
    """Aspect splits, a trained pair baseline and a placeholder aspect model (no CUDA)."""
    _splits(project, ROWS)
    _pair_baseline(project.pair_baseline)
    save_placeholder(project.aspect_model, "aspects", LABELS, "no CUDA device")
    return project


def _by_rule(pairs: list[tuple[str, str]]) -> list[str]:
    """A fake pair model: the opinion word of the clause that names the aspect."""
    answers = []
    for text, aspect in pairs:
        clause = next(c for c in text.replace(",", " but ").split(" but ") if aspect in c)
        if any(w in clause for w in ("not bad", "not terrible")):
            answers.append("positive")
        elif any(w in clause for w in ("terrible", "dies", "awful", "sloppy", "not ")):
            answers.append("negative")
        elif any(w in clause for w in ("great", "gorgeous", "lovely", "funny")):
            answers.append("positive")
        else:
            answers.append("neutral")
    return answers


def test_the_pair_suite_runs_on_the_shared_runner_and_reports_each_rate():
    cases = build_aspect_suite(LABELS)
    assert behavioural.Case("contrast", ("great video but the audio is terrible", "audio"),
                            expected="negative", variant="audio") in cases
    assert behavioural.Case("no_opinion", ("I bought it with a charger", "charger"),
                            expected="neutral") in cases
    calls = []
    result = behavioural.run_suite(lambda xs: calls.append(xs) or _by_rule(xs), cases,
                                   ASPECT_TEST_TYPES)
    assert len(calls) == 1 and all(isinstance(x, tuple) for x in calls[0])
    assert {t: v["pass_rate"] for t, v in result["tests"].items()} == dict.fromkeys(
        ASPECT_TEST_TYPES, 1.0)
    positive = behavioural.run_suite(lambda xs: ["positive"] * len(xs), cases, ASPECT_TEST_TYPES)
    assert positive["tests"]["contrast"]["pass_rate"] == 0.5
    assert positive["tests"]["no_opinion"]["pass_rate"] == 0.0
    # "not bad"/"not terrible" must not be negative: always positive passes those three
    assert positive["tests"]["negated_aspect"]["pass_rate"] == 0.5
    # without a neutral class there is no no-opinion case
    assert not any(c.test == "no_opinion" for c in build_aspect_suite(["negative", "positive"]))


def test_evaluation_writes_each_model_the_majority_and_the_best(aspects):
    best = evaluate_aspects.run(EvaluationConfig(latency_batch_size=4), aspects)

    report = aspects.aspect_evaluation_dir
    baseline = json.loads((report / "pair_baseline_test_metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "behavioural"):
        assert key in baseline
    assert set(baseline["behavioural"]["tests"]) == set(ASPECT_TEST_TYPES)
    assert baseline["accuracy"] == 1.0  # it was trained on these rows
    majority = json.loads((report / "majority_test_metrics.json").read_text())
    assert majority["accuracy"] == pytest.approx(3 / 8) and majority["majority_class"] in LABELS
    assert (report / "pair_baseline_confusion_matrix.png").is_file()
    comparison = (report / "comparison.md").read_text()
    assert "| majority | reference |" in comparison and "contrast" in comparison
    assert "- aspect_model: no CUDA device" in comparison
    recorded = json.loads(aspects.aspect_best_model.read_text())
    assert recorded["name"] == best.name == "pair_baseline"
    assert recorded["skipped"] == {"aspect_model": "no CUDA device"}
    assert not (aspects.root / "models" / "evaluation").exists()  # the sentiment one untouched


def test_a_text_model_in_an_aspect_folder_is_refused(aspects):
    shutil.rmtree(aspects.pair_baseline)
    from tiny_sklearn import save_tiny_model

    save_tiny_model(aspects.pair_baseline)
    with pytest.raises(PipelineError, match=r"input is 'text'.*evaluates 'pair' models"):
        evaluate_aspects.run(EvaluationConfig(), aspects)


def test_no_aspect_data_skips_with_the_reason(project):
    _splits(project, [])
    save_placeholder(project.aspect_model, "aspects", LABELS, "no aspect data configured")
    save_placeholder(project.pair_baseline, "pair_baseline", LABELS, "no aspect data configured")
    export = export_aspects_onnx.run(OnnxExportConfig(), project)
    assert export.fp32 == export.int8 == "skipped: no aspect data configured"
    assert read_manifest(project.aspect_onnx_int8).kind == "placeholder"

    result = evaluate_aspects.run(EvaluationConfig(), project)
    assert result.status == "skipped" and "has no rows" in result.reason
    assert json.loads(project.aspect_best_model.read_text())["status"] == "skipped"
    assert "Skipped" in (project.aspect_evaluation_dir / "comparison.md").read_text()

    registered = register_aspects.run(RegisterConfig(), project)
    assert not registered.registered and registered.reason.startswith("no champion: ")
    assert json.loads(project.aspect_registration.read_text())["registered"] is False


def test_only_placeholders_skip_with_their_reasons(aspects):
    save_placeholder(aspects.pair_baseline, "pair_baseline", LABELS, "disabled")
    result = evaluate_aspects.run(EvaluationConfig(), aspects)
    assert result.skipped == {"aspect_model": "no CUDA device", "pair_baseline": "disabled"}


@pytest.mark.slow
def test_the_pair_model_is_exported_evaluated_registered_and_opened_as_a_pair_model(
    aspects, tiny_pair_model
):
    for name in ("onnxruntime", "onnxscript"):
        pytest.importorskip(name)
    shutil.rmtree(aspects.aspect_model)
    shutil.copytree(tiny_pair_model, aspects.aspect_model)

    exported = export_aspects_onnx.run(OnnxExportConfig(), aspects)
    assert (exported.fp32, exported.int8) == ("exported", "exported")
    for folder in (aspects.aspect_onnx, aspects.aspect_onnx_int8):
        assert read_manifest(folder).input == "pair"

    config = EvaluationConfig(latency_batch_size=4, int8_max_metric_drop=1.0)
    evaluate_aspects.run(config, aspects)
    report = aspects.aspect_evaluation_dir
    onnx = json.loads((report / "aspect_model_onnx_test_metrics.json").read_text())
    assert onnx["status"] == "passed" and onnx["parity"]["max_abs_logit_diff"] < 1e-3
    int8 = json.loads((report / "aspect_model_onnx-int8_test_metrics.json").read_text())
    assert "macro_f1" in int8 and int8["parity"]["metric_drop"] is not None
    model = json.loads((report / "aspect_model_test_metrics.json").read_text())
    assert set(model["behavioural"]["tests"]) == set(ASPECT_TEST_TYPES)

    # the random tiny model loses to the baseline; registration takes the champion either way
    result = register_aspects.run(RegisterConfig(min_score=0.0), aspects)
    assert result.registered and result.model_uri == "models:/aspect-classifier@champion"
    opened = open_model("models:/aspect-classifier@champion", model_name="aspect-classifier",
                        paths=aspects)
    assert opened.resolved.manifest.input == "pair" and opened.resolved.version == "1"
    pairs = [("great video but the audio is terrible", "audio")]
    assert opened.model.predict(pairs)[0] in LABELS


def test_a_registered_pair_model_resolves_back_as_a_pair_model(aspects):
    evaluate_aspects.run(EvaluationConfig(behavioural_tests=False), aspects)
    result = register_aspects.run(RegisterConfig(), aspects)
    assert (result.registered, result.model_name, result.alias) == (
        True, "aspect-classifier", "champion")
    opened = open_model("models:/aspect-classifier@champion", model_name="aspect-classifier",
                        paths=aspects)
    assert opened.model.manifest.input == "pair"
    assert opened.model.predict([("awful audio, great video", "audio"),
                                 ("awful audio, great video", "video")]) == ["negative",
                                                                              "positive"]
