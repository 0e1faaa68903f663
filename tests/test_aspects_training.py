"""train_aspects and train_aspect_baseline: the pair classifier, its placeholders, adopting one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from sentiment_pipeline import tracking  # noqa: E402
from sentiment_pipeline.config.aspects_train import AspectsTrainConfig  # noqa: E402
from sentiment_pipeline.config.distilbert import DistilBERTConfig  # noqa: E402
from sentiment_pipeline.errors import ConfigError  # noqa: E402
from sentiment_pipeline.models import train_aspect_baseline as ab  # noqa: E402
from sentiment_pipeline.models import train_aspects as ta  # noqa: E402
from sentiment_pipeline.models.artifacts.loader import load_model  # noqa: E402
from sentiment_pipeline.models.distilbert import trainer as tr  # noqa: E402
from sentiment_pipeline.models.distilbert import tuned  # noqa: E402
from sentiment_pipeline.models.distilbert.adopt import label_order  # noqa: E402
from sentiment_pipeline.models.distilbert.params import DistilBERTTrialParams  # noqa: E402
from synthetic import LABELS  # noqa: E402

ASPECTS = ["audio", "video", "battery", "screen", "host", "editing"]
OPINIONS = {
    0: ["awful", "terrible", "bad"], 1: ["new", "here", "black"], 2: ["great", "good", "lovely"]
}


def aspect_rows(n: int, seed: int) -> pd.DataFrame:
    """(text, aspect, label) rows; a third contrast two aspects in one sentence."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        aspect, other = rng.choice(ASPECTS, size=2, replace=False)
        label = int(rng.choice([0, 1, 2], p=[0.4, 0.2, 0.4]))
        word = rng.choice(OPINIONS[label])
        if i % 3 == 0:
            flip = 2 - label if label != 1 else 0
            text = f"the {aspect} is {word} but the {other} is {rng.choice(OPINIONS[flip])}"
        else:
            text = f"honestly the {aspect} is {word} today"
        rows.append({"text": text, "aspect": str(aspect), "label": label})
    return pd.DataFrame(rows, columns=["text", "aspect", "label"]).astype(
        {"text": object, "aspect": object, "label": "int64"}
    )


def write_aspect_data(paths, train: int = 48, val: int = 24, status: str = "ok") -> None:
    paths.aspect_data_dir.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", train, 0), ("val", val, 1), ("test", val, 2)):
        aspect_rows(n, seed).to_parquet(paths.aspects_split(name), index=False)
    paths.aspects_labels.write_text(json.dumps(LABELS))
    report = {"status": status}
    if status == "skipped":
        report["reason"] = "no aspect data configured (aspects.source is null)"
    paths.aspects_report.parent.mkdir(parents=True, exist_ok=True)
    paths.aspects_report.write_text(json.dumps(report))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_transformer import build_tiny_transformer

    torch.set_num_threads(1)
    texts = aspect_rows(200, 5)["text"].tolist()
    return build_tiny_transformer(
        tmp_path_factory.mktemp("tiny-aspect-bert") / "model", architecture="bert", texts=texts
    )


@pytest.fixture
def aspect_data(project):
    write_aspect_data(project)
    return project


def _config(manager, paths, model, *extra: str) -> AspectsTrainConfig:
    overrides = [
        "train.aspects.allow_cpu=true", f"train.aspects.model_name_or_path={model}",
        "train.aspects.n_trials=2", "train.aspects.max_length=32",
        "train.aspects.lr=[1.0e-3, 5.0e-3]", "train.aspects.epochs=[1, 1]",
        "train.aspects.batch_size=[16]", "train.aspects.pruner=none", *extra,
    ]
    return manager(paths, *overrides).config.train.aspects


def _assert_placeholders(paths, reason: str) -> None:
    assert load_model(paths.aspect_model).manifest.kind == "placeholder"
    assert load_model(paths.aspect_model).manifest.reason == reason
    metrics = json.loads(paths.aspect_metrics.read_text())
    assert (metrics["status"], metrics["reason"]) == ("skipped", reason)
    assert metrics["best_val_macro_f1"] is None
    assert json.loads((paths.aspect_results / "study.json").read_text()) == metrics


# --- configuration ---------------------------------------------------------------------------


def test_train_aspects_has_the_fine_tuning_keys_plus_the_aspect_levers() -> None:
    shared = set(DistilBERTConfig.model_fields) - {"nproc_per_node"}
    levers = {"mark_aspect", "class_weight", "label_smoothing", "fine_tune", "label_map"}
    assert set(AspectsTrainConfig.model_fields) == shared | levers
    config = AspectsTrainConfig()
    assert (config.mark_aspect, config.fine_tune) == (True, True)
    assert config.model_name_or_path == "bert-base-uncased"
    with pytest.raises(ValueError, match="class_weight"):
        AspectsTrainConfig(class_weight="inverse")


def test_params_yaml_holds_every_key_of_the_two_sections(manager, project) -> None:
    import yaml

    tree = yaml.safe_load((project.root / "params.yaml").read_text())["train"]
    assert set(tree["aspects"]) == set(AspectsTrainConfig.model_fields)
    assert set(tree["aspect_baseline"]) == set(manager(project).config.train.baseline.model_fields)


# --- class weights ---------------------------------------------------------------------------


def test_class_weights_balanced_sqrt_and_none() -> None:
    labels = pd.Series([0, 0, 0, 2, 2, 1])
    assert tuned.class_weights(labels, 3, "balanced") == pytest.approx((6 / 9, 6 / 3, 6 / 6))
    assert tuned.class_weights(labels, 3, "sqrt") == pytest.approx(
        ((6 / 9) ** 0.5, 2 ** 0.5, 1.0)
    )
    assert tuned.class_weights(labels, 3, "none") is None
    # A class never seen weighs as if seen once, not infinitely.
    assert tuned.class_weights(pd.Series([0, 0]), 2, "balanced") == pytest.approx((0.5, 1.0))


def test_the_trainer_loss_is_the_weighted_cross_entropy(aspect_data, manager, tiny_bert) -> None:
    config = _config(manager, aspect_data, tiny_bert)
    labels = ta.read_aspect_labels(aspect_data)
    train = ta.read_aspect_split(aspect_data, "train", labels)
    setup, _ = tuned.prepare(ta.task(config, aspect_data), config, train, train, labels, "cpu",
                             "fp32")
    assert setup.class_weights == tuned.class_weights(train["label"], 3, "balanced")
    params = DistilBERTTrialParams(learning_rate=1e-3, per_device_train_batch_size=8,
                                   num_train_epochs=1, weight_decay=0.0, warmup_steps=0.0)
    trainer = tr.build_trainer(setup, params, str(aspect_data.root / "out"))
    batch = trainer.data_collator([setup.train[i] for i in range(8)])
    assert "token_type_ids" in batch and batch["token_type_ids"].max() == 1  # the pair segments
    model = trainer.model.eval()
    with torch.no_grad():
        model.classifier.weight.mul_(100)  # confident, unequal logits: weights then matter
        loss = trainer.compute_loss(model, dict(batch))
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    weights = torch.tensor(setup.class_weights)
    expected = torch.nn.functional.cross_entropy(logits, batch["labels"], weight=weights)
    plain = torch.nn.functional.cross_entropy(logits, batch["labels"])
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(expected) != pytest.approx(float(plain), rel=1e-3)
    assert tr.weighted_loss(None, 0.0) is None  # the text model keeps its own loss


# --- the stage -------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_stage_writes_a_pair_model_tracks_nested_runs_and_resumes(
    aspect_data, manager, tiny_bert
) -> None:
    config = _config(manager, aspect_data, tiny_bert)
    result = ta.run(config, aspect_data)

    assert result.status == "trained" and result.trials["complete"] == 2
    assert set(result.details["class_weights"]) == set(LABELS)
    assert json.loads(aspect_data.aspect_metrics.read_text()) == result.model_dump(mode="json")
    model = load_model(aspect_data.aspect_model)
    manifest = model.manifest
    assert (manifest.kind, manifest.input, manifest.pair_style) == ("transformers", "pair",
                                                                    "marked")
    assert manifest.labels == LABELS and manifest.params["class_weight"] == "balanced"
    pairs = [("great video but the audio is terrible", "audio"),
             ("great video but the audio is terrible", "video")]
    proba = model.predict_proba(pairs)
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (aspect_data.aspect_results / "trials.csv").is_file()

    tracking.configure(aspect_data)
    runs = mlflow.search_runs(experiment_names=[tracking.experiment_name("train_aspects")],
                              output_format="list")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {result.mlflow_run_id}

    shutil.rmtree(aspect_data.aspect_model)  # as DVC does before a rerun
    again = ta.run(config, aspect_data)
    assert again.study_name == result.study_name and again.trials_run_now == 0
    assert again.best_trial == result.best_trial
    assert load_model(aspect_data.aspect_model).manifest.input == "pair"


@pytest.mark.slow
def test_plain_style_without_weights(aspect_data, manager, tiny_bert) -> None:
    config = _config(manager, aspect_data, tiny_bert, "train.aspects.mark_aspect=false",
                     "train.aspects.class_weight=none", "train.aspects.n_trials=1")
    result = ta.run(config, aspect_data)
    assert "class_weights" not in result.details
    assert load_model(aspect_data.aspect_model).manifest.pair_style == "plain"


def test_disabled_writes_placeholders(aspect_data, manager) -> None:
    result = ta.run(manager(aspect_data, "train.aspects.enable=false").config.train.aspects,
                    aspect_data)
    assert result.reason == "disabled"
    _assert_placeholders(aspect_data, "disabled")


def test_no_cuda_without_allow_cpu_writes_placeholders(
    aspect_data, manager, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = ta.run(manager(aspect_data).config.train.aspects, aspect_data)
    assert result.reason == "no_cuda"
    _assert_placeholders(aspect_data, "no_cuda")
    assert "--set train.aspects.allow_cpu=true" in caplog.text


def test_no_aspect_data_writes_placeholders_with_the_reason(project, manager, tiny_bert) -> None:
    write_aspect_data(project, train=0, val=0, status="skipped")
    config = _config(manager, project, tiny_bert)
    assert ta.run(config, project).reason == (
        "no aspect data configured (aspects.source is null)"
    )
    _assert_placeholders(project, "no aspect data configured (aspects.source is null)")
    assert load_model(project.aspect_model).manifest.labels == LABELS

    write_aspect_data(project, train=0, val=6)
    assert ta.run(config, project).reason.startswith("no aspect rows in the train split")


# --- adopting a pair classifier --------------------------------------------------------------


def test_label_order_maps_names_case_insensitively_and_names_the_unknown() -> None:
    theirs = {0: "Positive", 1: "Negative", 2: "Neutral"}
    assert label_order(theirs, LABELS, {}, "train.aspects") == [1, 2, 0]
    assert label_order({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, LABELS,
                       {"label_0": "positive", "LABEL_1": "neutral", "LABEL_2": "negative"},
                       "train.aspects") == [2, 1, 0]
    with pytest.raises(ConfigError, match=r"\['LABEL_1'\] map to none .*train\.aspects\.label_map"):
        label_order({0: "Negative", 1: "LABEL_1", 2: "Positive"}, LABELS, {}, "train.aspects")
    with pytest.raises(ConfigError, match="exactly one"):
        label_order({0: "Negative", 1: "bad", 2: "Positive"}, LABELS, {"bad": "negative"},
                    "train.aspects")


def test_fine_tune_false_adopts_a_classifier_with_its_labels_mapped(
    aspect_data, manager, tiny_bert, tmp_path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    theirs = ["Positive", "Negative", "Neutral"]
    source = tmp_path / "absa"
    original = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    original.config.id2label = dict(enumerate(theirs))
    original.config.label2id = {name: i for i, name in enumerate(theirs)}
    original.save_pretrained(source)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(source)

    config = _config(manager, aspect_data, source, "train.aspects.fine_tune=false",
                     "train.aspects.mark_aspect=false")
    result = ta.run(config, aspect_data)

    assert result.status == "adopted" and result.best_val_macro_f1 is not None
    assert result.details["adopted_labels"] == {
        "negative": "Negative", "neutral": "Neutral", "positive": "Positive"
    }
    adopted = load_model(aspect_data.aspect_model)
    assert (adopted.manifest.input, adopted.manifest.pair_style) == ("pair", "plain")
    assert adopted.manifest.labels == LABELS
    tokenizer = AutoTokenizer.from_pretrained(source)
    pairs = [("the audio is great", "audio"), ("the screen is awful today", "screen")]
    with torch.no_grad():
        encoded = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], padding=True,
                            return_tensors="pt")
        before = torch.softmax(original.eval()(**encoded).logits, dim=-1).numpy()
    # Our column k is their column that means our class k.
    np.testing.assert_allclose(adopted.predict_proba(pairs), before[:, [1, 2, 0]], atol=1e-5)
    assert json.loads(aspect_data.aspect_metrics.read_text())["status"] == "adopted"


# --- the pair baseline -----------------------------------------------------------------------


@pytest.mark.slow
def test_pair_baseline_trains_on_pair_documents(aspect_data, manager) -> None:
    config = manager(aspect_data).config.train.aspect_baseline
    manifest = ab.run(config, aspect_data)
    model = load_model(aspect_data.pair_baseline, project=aspect_data)
    assert (model.manifest.kind, model.manifest.input) == ("sklearn", "pair")
    assert model.manifest.metrics["val_macro_f1"] == manifest.metrics["val_macro_f1"] > 0.3
    proba = model.predict_proba([("the audio is great", "audio"), ("the host is awful", "host")])
    assert proba.shape == (2, 3)
    assert model.manifest.mlflow_run_id


def test_pair_baseline_placeholder_without_aspect_data(project, manager) -> None:
    write_aspect_data(project, train=0, val=0, status="skipped")
    ab.run(manager(project).config.train.aspect_baseline, project)
    manifest = load_model(project.pair_baseline).manifest
    assert (manifest.kind, manifest.reason) == (
        "placeholder", "no aspect data configured (aspects.source is null)"
    )
