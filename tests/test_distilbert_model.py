"""The `transformers` model kind: save, load through load_model, predict in input order."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

pytest.importorskip("transformers")


from sentiment_pipeline.models.artifacts.loader import load_model  # noqa: E402
from sentiment_pipeline.models.artifacts.manifest import (  # noqa: E402
    ArtifactError,
    copy_model,
)
from sentiment_pipeline.models.artifacts.transformers_model import (  # noqa: E402
    WEIGHTS_FILE,
    TransformersModel,
)
from synthetic import LABELS  # noqa: E402

TEXTS = ["great flight", "the crew was rude and the plane was delayed again today", "seat", ""]


@pytest.fixture
def saved(tiny_transformer_model):
    return tiny_transformer_model  # read-only: tests that change files copy it first


def test_saved_directory_holds_safetensors_tokenizer_and_manifest(saved) -> None:
    names = {p.name for p in saved.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "model.json"} <= names
    assert not any(n.endswith((".bin", ".pkl", ".pt")) for n in names)


def test_load_model_predicts_probabilities_in_input_order(saved) -> None:
    model = load_model(saved)
    assert isinstance(model, TransformersModel) and model.labels == LABELS
    assert model.max_length == 32  # params.max_length of the fixture's manifest
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
    copy_model(saved, target, source.model_copy(update={"mlflow_run_id": "abc"}))
    copied = load_model(target)
    assert copied.manifest.mlflow_run_id == "abc"
    np.testing.assert_allclose(
        copied.predict_proba(TEXTS), load_model(saved).predict_proba(TEXTS), atol=1e-6
    )


def test_missing_weights_and_label_mismatch_are_reported(saved, tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="lists model.safetensors .* missing"):
        load_model(broken)
    wrong = tmp_path / "wrong"
    manifest = load_model(saved).manifest.model_copy(update={"labels": ["neg", "pos"]})
    copy_model(saved, wrong, manifest)
    with pytest.raises(ArtifactError, match="3 output classes but its manifest lists 2 labels"):
        load_model(wrong)


def _broken_copy(saved, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(saved, target)
    return target


def test_damaged_config_is_one_artifact_error(saved, tmp_path) -> None:
    broken = _broken_copy(saved, tmp_path, "config")
    (broken / "config.json").write_text('{"model_type": "distilbert", ')
    with pytest.raises(
        ArtifactError,
        match=r"cannot load the transformers model in .*config \(OSError: .*config.json' is "
        r"not a valid JSON file.*\); its config.json, tokenizer files or model.safetensors",
    ):
        load_model(broken)


def test_damaged_weights_are_one_artifact_error(saved, tmp_path) -> None:
    broken = _broken_copy(saved, tmp_path, "weights")
    (broken / WEIGHTS_FILE).write_bytes(os.urandom(2048))
    with pytest.raises(
        ArtifactError, match=r"cannot load the transformers model in .*weights \(SafetensorError"
    ):
        load_model(broken)
    truncated = _broken_copy(saved, tmp_path, "truncated")
    data = (saved / WEIGHTS_FILE).read_bytes()
    (truncated / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"model in .*truncated \(SafetensorError"):
        load_model(truncated)


def test_a_file_linking_out_of_the_folder_is_refused(saved, tmp_path) -> None:
    # The library reads files the manifest does not name (config, tokenizer): all are checked.
    linked = _broken_copy(saved, tmp_path, "linked")
    outside = tmp_path / "tokenizer.json"
    shutil.move(linked / "tokenizer.json", outside)
    (linked / "tokenizer.json").symlink_to(outside)
    with pytest.raises(ArtifactError, match=r"tokenizer.json is a symbolic link to .*; a model"):
        load_model(linked)
