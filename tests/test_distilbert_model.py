"""The `transformers` model kind: save, load through load_model, predict in input order."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from sentiment_pipeline.models.artifacts import (  # noqa: E402
    ArtifactError,
    ModelManifest,
    load_model,
)
from sentiment_pipeline.models.transformers_model import (  # noqa: E402
    TransformersModel,
    copy_transformers,
    save_transformers,
)
from synthetic import LABELS  # noqa: E402

TEXTS = ["great flight", "the crew was rude and the plane was delayed again today", "seat", ""]


@pytest.fixture(scope="module")
def saved(tiny_transformer, tmp_path_factory):
    target = tmp_path_factory.mktemp("saved") / "distilbert_model"
    manifest = ModelManifest(
        name="distilbert", kind="transformers", labels=LABELS, params={"max_length": 16}
    )
    save_transformers(
        target,
        AutoModelForSequenceClassification.from_pretrained(tiny_transformer),
        AutoTokenizer.from_pretrained(tiny_transformer),
        manifest,
    )
    return target


def test_saved_directory_holds_safetensors_tokenizer_and_manifest(saved) -> None:
    names = {p.name for p in saved.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "model.json"} <= names
    assert not any(n.endswith((".bin", ".pkl", ".pt")) for n in names)


def test_load_model_predicts_probabilities_in_input_order(saved) -> None:
    model = load_model(saved)
    assert isinstance(model, TransformersModel) and model.labels == LABELS
    assert model.max_length == 16
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # Length-sorted batching must not reorder the answers.
    model.batch_size = 1
    np.testing.assert_allclose(model.predict_proba(TEXTS[::-1]), proba[::-1], atol=1e-5)
    assert model.predict(TEXTS[:1])[0] in LABELS
    assert model.predict_proba([]).shape == (0, 3)


def test_copy_keeps_weights_and_replaces_the_manifest(saved, tmp_path) -> None:
    source = load_model(saved).manifest
    target = tmp_path / "copy"
    copy_transformers(saved, target, source.model_copy(update={"mlflow_run_id": "abc"}))
    copied = load_model(target)
    assert copied.manifest.mlflow_run_id == "abc"
    np.testing.assert_allclose(
        copied.predict_proba(TEXTS), load_model(saved).predict_proba(TEXTS), atol=1e-6
    )


def test_missing_weights_and_label_mismatch_are_reported(saved, tmp_path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="lists model.safetensors .* missing"):
        load_model(broken)
    wrong = tmp_path / "wrong"
    manifest = load_model(saved).manifest.model_copy(update={"labels": ["neg", "pos"]})
    copy_transformers(saved, wrong, manifest)
    with pytest.raises(ArtifactError, match="3 output classes but its manifest lists 2 labels"):
        load_model(wrong)
