"""The model_evaluation stage: metrics, report files, skipped models, champion choice, MLflow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.errors import DataError, PipelineError
from sentiment_pipeline.evaluation import metrics, model_evaluation
from sentiment_pipeline.evaluation.evaluate import select_champion
from sentiment_pipeline.models.artifacts.manifest import ArtifactError
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from synthetic import LABELS
from tiny_sklearn import save_tiny_model

METRIC_KEYS = {
    "macro_f1", "weighted_f1", "accuracy", "roc_auc_ovr", "log_loss", "per_class",
    "latency_ms_per_1000", "n_samples", "confusion_matrix",
}


def _config(**changes) -> EvaluationConfig:
    return EvaluationConfig(**{"models": ["baseline", "distilbert"], **changes})


def test_real_model_evaluated_and_placeholder_skipped(processed):
    save_tiny_model(processed.baseline_model, run_id="train-run-42")
    save_placeholder(processed.distilbert_model, "distilbert", LABELS, "no CUDA device")

    result = model_evaluation.run(_config(latency_batch_size=8), processed)

    assert result.name == "baseline"
    assert result.skipped == {"distilbert": "no CUDA device"}
    assert result.evaluated == ["baseline"]
    report = processed.evaluation_dir
    assert sorted(p.name for p in report.iterdir()) == [
        "baseline_confusion_matrix.png", "baseline_test_metrics.json", "behavioural.json",
        "comparison.md", "pr_curves.png", "roc_curves.png",
    ]
    for png in report.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(report.parent.glob(".evaluation*"))  # no temp folder left

    test_metrics = json.loads((report / "baseline_test_metrics.json").read_text())
    assert METRIC_KEYS <= test_metrics.keys()
    assert test_metrics["n_samples"] == 48
    assert set(test_metrics["per_class"]) == set(LABELS)
    assert set(test_metrics["per_class"]["neutral"]) == {"precision", "recall", "f1", "support"}
    assert 0.8 <= test_metrics["macro_f1"] <= 1.0
    assert test_metrics["latency_ms_per_1000"] > 0

    behaviour = json.loads((report / "behavioural.json").read_text())
    assert behaviour["skipped"] == {"distilbert": "no CUDA device"}
    suite = behaviour["models"]["baseline"]
    assert 0.0 <= suite["pass_rate"] <= 1.0
    for test in ("negation", "invariance", "intensifier"):
        assert 0.0 <= suite["tests"][test]["pass_rate"] <= 1.0

    comparison = (report / "comparison.md").read_text()
    assert "Champion: **baseline**" in comparison
    assert "| baseline | champion | " in comparison
    assert "| distilbert | skipped |" in comparison
    assert "- distilbert: no CUDA device" in comparison

    best = json.loads(processed.best_model.read_text())
    assert best["name"] == "baseline"
    assert best["path"] == "models/baseline/logistic_baseline"
    assert best["kind"] == "sklearn"
    assert best["primary_metric"] == "macro_f1"
    assert best["score"] == test_metrics["macro_f1"]
    assert best["mlflow_run_id"] == "train-run-42"
    assert best["metrics"]["accuracy"] == test_metrics["accuracy"]

    import mlflow

    run = mlflow.get_run(best["evaluation_run_id"])
    assert run.data.tags["champion"] == "baseline"
    assert run.data.metrics["baseline.macro_f1"] == pytest.approx(test_metrics["macro_f1"])
    assert 0 <= run.data.metrics["baseline.behavioural.negation"] <= 1
    assert not any(key.startswith("distilbert") for key in run.data.metrics)
    logged = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id,
                                                              artifact_path="evaluation")}
    assert "evaluation/comparison.md" in logged


def test_every_model_a_placeholder_fails_and_writes_nothing(processed):
    save_placeholder(processed.baseline_model, "baseline", LABELS, "solver diverged")
    save_placeholder(processed.distilbert_model, "distilbert", LABELS, "no CUDA device")
    with pytest.raises(
        PipelineError,
        match=r"every model in evaluation.models is a placeholder \(baseline: solver diverged; "
        r"distilbert: no CUDA device\)",
    ):
        model_evaluation.run(_config(), processed)
    assert not processed.evaluation_dir.exists()
    assert not processed.best_model.exists()
    experiments = MlflowClient(f"sqlite:///{processed.mlflow_db}").search_experiments()
    assert "sentiment-pipeline/model_evaluation" not in {e.name for e in experiments}


def test_missing_model_directory_names_the_stage_to_run(processed):
    save_tiny_model(processed.baseline_model)
    with pytest.raises(PipelineError, match="no model directory for 'lightgbm' at .*run the "
                       "train_lightgbm stage first"):
        model_evaluation.run(_config(models=["baseline", "lightgbm"]), processed)
    assert not processed.evaluation_dir.exists()


def test_model_trained_for_other_labels_is_refused(processed):
    save_tiny_model(processed.baseline_model, labels=["neg", "neu", "pos"])
    with pytest.raises(ArtifactError, match="but the data has .*labels.json"):
        model_evaluation.run(_config(models=["baseline"]), processed)


def test_missing_processed_data_names_the_prepare_stage(project):
    with pytest.raises(DataError, match="no labels file at .*labels.json; run the prepare stage"):
        model_evaluation.run(_config(), project)


def test_the_test_split_is_read_through_the_data_contract(processed):
    processed.split("test").unlink()
    with pytest.raises(DataError, match="no test split at .*test.parquet; run the prepare stage"):
        model_evaluation.run(_config(), processed)


def test_champion_tie_break_is_deterministic():
    scores = {
        "lightgbm": {"macro_f1": 0.8, "accuracy": 0.85, "roc_auc_ovr": 0.9},
        "baseline": {"macro_f1": 0.8, "accuracy": 0.85, "roc_auc_ovr": 0.9},
        "distilbert": {"macro_f1": 0.8, "accuracy": 0.84, "roc_auc_ovr": 0.9},
    }
    # full tie on metrics: alphabetical, whatever the insertion order
    assert select_champion(scores, "macro_f1") == "baseline"
    assert select_champion(dict(reversed(scores.items())), "macro_f1") == (
        "baseline"
    )
    scores["lightgbm"]["accuracy"] = 0.86  # tie on macro-F1 broken by accuracy
    assert select_champion(scores, "roc_auc_ovr") == "lightgbm"
    scores["distilbert"]["macro_f1"] = 0.81  # then macro-F1 before accuracy
    assert select_champion(scores, "roc_auc_ovr") == "distilbert"
    scores["baseline"]["roc_auc_ovr"] = 0.95  # the primary metric first
    assert select_champion(scores, "roc_auc_ovr") == "baseline"
    # an undefined score ranks below any number
    scores = {"a": {"roc_auc_ovr": None, "macro_f1": 0.9}, "b": {"roc_auc_ovr": 0.1}}
    assert select_champion(scores, "roc_auc_ovr") == "b"


def test_classification_metrics():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([
        [0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.1, 0.8, 0.1],
        [0.2, 0.6, 0.2], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6],
    ])
    m = metrics.classification_metrics(y_true, proba, LABELS)
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["per_class"]["negative"] == {
        "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2
    }
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 1.0) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 2]]
    assert m["roc_auc_ovr"] == pytest.approx(1.0)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.4, 0.8, 0.6, 0.8, 0.6])))


def test_roc_auc_is_none_when_a_class_is_absent_but_log_loss_is_defined():
    y_true = np.array([0, 0, 2, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.3, 0.1, 0.6]])
    m = metrics.classification_metrics(y_true, proba, LABELS)
    assert m["roc_auc_ovr"] is None
    assert m["per_class"]["neutral"]["support"] == 0
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.6, 0.7, 0.6])))


def test_latency_warms_up_then_times_batches_scaled_to_1000_texts():
    calls = []
    ticks = iter([10.0, 10.5])
    value = metrics.latency_ms_per_1000(
        lambda batch: calls.append(len(batch)), ["t"] * 250, batch_size=100,
        clock=lambda: next(ticks),
    )
    assert calls == [100, 100, 100, 50]  # one warm-up, then the timed batches
    assert value == pytest.approx(0.5 * 1000 * 1000 / 250)
    assert metrics.latency_ms_per_1000(lambda b: None, [], 10) is None


# --- exported variants (ONNX) of the transformer ------------------------------------------


def _with_exports(project, exported):
    import shutil

    source, fp32, int8 = exported
    shutil.copytree(source, project.distilbert_model)
    shutil.copytree(fp32, project.distilbert_onnx)
    shutil.copytree(int8, project.distilbert_onnx_int8)
    return project


def test_onnx_variants_are_rows_beneath_their_source_and_served_with_the_champion(
    processed, exported
):
    _with_exports(processed, exported)

    result = model_evaluation.run(_config(models=["distilbert"], latency_batch_size=16), processed)

    assert result.name == "distilbert" and result.evaluated == ["distilbert"]
    assert result.variants == {
        "onnx": "models/advanced/distilbert_onnx",
        "onnx-int8": "models/advanced/distilbert_onnx_int8",
    }
    report = processed.evaluation_dir
    rows = [line for line in (report / "comparison.md").read_text().splitlines()
            if line.startswith("| distilbert")]
    assert [row.split(" | ")[:2] for row in rows[:3]] == [
        ["| distilbert", "champion"], ["| distilbert · onnx fp32", "variant"],
        ["| distilbert · onnx int8", "variant"],
    ]
    fp32 = json.loads((report / "distilbert_onnx_test_metrics.json").read_text())
    assert (fp32["variant"], fp32["precision"], fp32["check"]) == ("onnx", "fp32", "passed")
    assert fp32["parity"]["max_abs_logit_diff"] <= 1e-3
    assert fp32["parity"]["argmax_agreement"] == 1.0
    assert fp32["n_samples"] == 48
    int8 = json.loads((report / "distilbert_onnx-int8_test_metrics.json").read_text())
    assert int8["precision"] == "int8" and int8["parity"]["metric_drop"] <= 0.01

    import mlflow

    run = mlflow.get_run(result.evaluation_run_id)
    assert run.data.metrics["distilbert.onnx.max_abs_logit_diff"] <= 1e-3
    assert run.data.metrics["distilbert.onnx-int8.check_passed"] == 1
    assert "distilbert.onnx-int8.macro_f1" in run.data.metrics
    assert run.data.tags["failed_variants"] == "none"


def test_a_variant_failing_its_check_is_reported_and_not_served(
    processed, exported, caplog
):
    _with_exports(processed, exported)
    config = _config(models=["distilbert"], onnx_max_logit_diff=1e-15,
                     onnx_min_argmax_agreement=1.0, int8_max_metric_drop=1.0)

    result = model_evaluation.run(config, processed)

    assert result.variants == {"onnx-int8": "models/advanced/distilbert_onnx_int8"}
    comparison = (processed.evaluation_dir / "comparison.md").read_text()
    assert "| distilbert · onnx fp32 | variant, failed check |" in comparison
    assert "failed: max abs logit diff " in comparison and "> evaluation.onnx_max_logit_diff" in (
        comparison
    )
    assert "distilbert · onnx fp32 failed its check and is not served" in caplog.text
    import mlflow

    assert mlflow.get_run(result.evaluation_run_id).data.tags["failed_variants"] == (
        "distilbert.onnx"
    )


def test_a_stale_or_skipped_variant_is_not_served(processed, exported):
    _with_exports(processed, exported)
    save_placeholder(processed.distilbert_onnx_int8, "distilbert", LABELS, "disabled")
    tokenizer_config = processed.distilbert_model / "tokenizer_config.json"
    tokenizer_config.write_text(tokenizer_config.read_text() + "\n")  # another source model

    result = model_evaluation.run(_config(models=["distilbert"]), processed)

    assert result.variants == {}
    comparison = (processed.evaluation_dir / "comparison.md").read_text()
    assert "| distilbert · onnx int8 | skipped |" in comparison
    assert "- distilbert · onnx int8: disabled" in comparison
    assert "stale: exported from sha256:" in comparison
    assert "run the export_onnx stage again" in comparison
    assert result.skipped == {}  # variants are never candidates of their own


def test_variants_of_a_model_that_is_not_champion_are_scored_but_not_served(
    processed, exported
):
    _with_exports(processed, exported)
    save_tiny_model(processed.baseline_model)

    result = model_evaluation.run(_config(), processed)

    assert result.name == "baseline" and result.variants == {}
    assert sorted(result.evaluated) == ["baseline", "distilbert"]
    assert (processed.evaluation_dir / "distilbert_onnx_test_metrics.json").is_file()


def test_variant_checks():
    from sentiment_pipeline.evaluation.variants import check

    config = EvaluationConfig()
    ok = {"max_abs_logit_diff": 1e-4, "argmax_agreement": 1.0, "metric_drop": 0.2}
    assert check("onnx", ok, config) is None
    bad = {"max_abs_logit_diff": 2e-3, "argmax_agreement": 0.99, "metric_drop": 0.0}
    assert check("onnx", bad, config) == (
        "max abs logit diff 2.00e-03 > evaluation.onnx_max_logit_diff 0.001; argmax agreement "
        "0.9900 < evaluation.onnx_min_argmax_agreement 0.999"
    )
    assert check("onnx-int8", {**bad, "metric_drop": 0.01}, config) is None
    assert check("onnx-int8", {**ok, "metric_drop": 0.011}, config) == (
        "macro_f1 drop 0.0110 > evaluation.int8_max_metric_drop 0.01"
    )
    assert check("onnx-int8", {**ok, "metric_drop": None}, config) == (
        "macro_f1 is undefined on the test split"
    )
