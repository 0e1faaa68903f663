"""Model folders: save/load round trips, every load error with its message, every attack refused."""

from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np
import pytest
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from hostile_artifacts import SHELL_TYPES, run_like_the_old_loader, save_shell_command_model
from sentiment_pipeline.models.artifacts import sklearn_model
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    MANIFEST,
    ArtifactError,
    ModelManifest,
    copy_model,
    read_manifest,
    resolve_file,
)
from sentiment_pipeline.models.artifacts.placeholder import PlaceholderModel, save_placeholder
from sentiment_pipeline.models.artifacts.sklearn_model import (
    ALLOWED_TYPES,
    SKOPS_FILE,
    SklearnModel,
    save_sklearn,
)
from sentiment_pipeline.paths import ProjectPaths
from synthetic import LABELS, make_processed_splits
from tiny_sklearn import save_tiny_model

TEXTS = ["awful delayed flight", "the gate today", "great friendly crew"]


@pytest.fixture
def paths(tmp_path):
    return ProjectPaths.at(tmp_path / "project")


@pytest.fixture
def sklearn_dir(paths):
    save_tiny_model(paths.baseline_model)
    return paths.baseline_model


def _edit_manifest(directory, **changes):
    path = directory / MANIFEST
    payload = json.loads(path.read_text())
    payload.update(changes)
    path.write_text(json.dumps(payload))


def _train():
    return make_processed_splits()["train"]


# --- round trips ----------------------------------------------------------------------------


def test_sklearn_round_trip(sklearn_dir, paths):
    model = load_model(sklearn_dir, expected_labels=LABELS, project=paths, trust=False)
    assert isinstance(model, SklearnModel)
    assert model.labels == LABELS
    assert model.manifest.mlflow_run_id == "train-run-1"
    assert model.manifest.files == {"estimator": SKOPS_FILE}
    proba = model.predict_proba(TEXTS)
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # columns are in label-id order: each cue word wins its own column
    assert list(proba.argmax(axis=1)) == [0, 1, 2]
    assert model.predict(TEXTS) == ["negative", "neutral", "positive"]


def test_columns_follow_label_ids_when_a_class_was_not_trained(tmp_path):
    train = _train()
    train = train[train["label"] != 1]
    estimator = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(
        train["text"], train["label"]
    )
    manifest = ModelManifest(name="baseline", kind="sklearn", labels=LABELS)
    save_sklearn(tmp_path / "m", estimator, manifest)
    proba = load_model(tmp_path / "m", trust=True).predict_proba(TEXTS)
    assert proba.shape == (3, 3)
    assert (proba[:, 1] == 0).all()
    assert proba[0].argmax() == 0 and proba[2].argmax() == 2


def test_placeholder_round_trip(tmp_path):
    save_placeholder(tmp_path / "m", "distilbert", LABELS, "no CUDA device")
    model = load_model(tmp_path / "m", expected_labels=LABELS)
    assert isinstance(model, PlaceholderModel)
    assert model.manifest.status == "skipped"
    assert model.labels == LABELS
    with pytest.raises(ArtifactError, match="'distilbert' is a placeholder .skipped: no CUDA"):
        model.predict_proba(TEXTS)


def test_copy_model_replaces_the_manifest_and_keeps_the_files(sklearn_dir, tmp_path):
    target = tmp_path / "copy"
    old = read_manifest(sklearn_dir)
    copy_model(sklearn_dir, target, old.model_copy(update={"mlflow_run_id": "run-2"}))
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST, SKOPS_FILE]
    copied = load_model(target, trust=True)
    assert copied.manifest.mlflow_run_id == "run-2"
    np.testing.assert_array_equal(
        copied.predict_proba(TEXTS), load_model(sklearn_dir, trust=True).predict_proba(TEXTS)
    )
    wrong = old.model_copy(update={"files": {"estimator": "other.skops"}})
    with pytest.raises(ArtifactError, match="names 'other.skops' as its estimator, but .* has no"):
        copy_model(sklearn_dir, tmp_path / "wrong", wrong)
    assert not (tmp_path / "wrong").exists()


# --- the allow-list ---------------------------------------------------------------------------


def test_allow_list_is_exactly_what_our_training_stages_write(tmp_path):
    import lightgbm as lgb

    from sentiment_pipeline.config.baseline import BaselineConfig
    from sentiment_pipeline.config.lightgbm import LightGBMConfig
    from sentiment_pipeline.models import train_baseline
    from sentiment_pipeline.models.text_features import make_tfidf, plain_vocabulary

    train, val = _train(), make_processed_splits()["val"]
    logistic = train_baseline.train(BaselineConfig(), train)
    # The shape train_lightgbm saves: the study's fitted TF-IDF + an LGBMClassifier.
    config = LightGBMConfig()
    vectorizer = plain_vocabulary(make_tfidf(config.tfidf).fit(train["text"]))
    booster = lgb.LGBMClassifier(
        n_estimators=20, class_weight="balanced", random_state=config.seed, verbose=-1
    ).fit(
        vectorizer.transform(train["text"]),
        train["label"].to_numpy(),
        eval_X=vectorizer.transform(val["text"]),
        eval_y=val["label"].to_numpy(),
        callbacks=[lgb.early_stopping(5, verbose=False)],
    )
    lightgbm = Pipeline([("tfidf", vectorizer), ("clf", booster)])
    needed = set()
    for name, estimator in (("baseline", logistic), ("lightgbm", lightgbm)):
        needed |= set(sio.get_untrusted_types(data=sio.dumps(estimator)))
        # ... and both pass the loader's structure and label checks.
        manifest = ModelManifest(name=name, kind="sklearn", labels=LABELS)
        save_sklearn(tmp_path / name, estimator, manifest)
        loaded = load_model(tmp_path / name, expected_labels=LABELS, trust=True)
        np.testing.assert_allclose(loaded.predict_proba(TEXTS), estimator.predict_proba(TEXTS))
    assert needed == set(ALLOWED_TYPES)


def test_the_shell_command_artifact_is_refused_and_runs_nothing(paths, tmp_path):
    marker = tmp_path / "pwned"
    model_dir = save_shell_command_model(paths.models_dir / "evil", marker)
    assert json.loads((model_dir / MANIFEST).read_text())["trusted_types"] == SHELL_TYPES
    # The payload is real: loaded the way the old loader did, a copy of it writes the marker.
    probe = shutil.copytree(model_dir, tmp_path / "probe")
    run_like_the_old_loader(probe)
    assert marker.is_file()
    marker.unlink()

    for trust in (False, True):
        with pytest.raises(
            ArtifactError,
            match=r"refusing to load .*pipeline.skops: it holds types outside this pipeline's "
            r"allow-list \['builtins.object', 'numpy.full_like', 'subprocess.check_output'\]",
        ):
            load_model(model_dir, project=paths, trust=trust)
    assert not marker.exists()


def test_a_type_outside_the_allow_list_is_refused_even_if_the_manifest_lists_it(sklearn_dir):
    vectorizer = TfidfVectorizer(tokenizer=str.split, token_pattern=None)
    estimator = make_pipeline(vectorizer, LogisticRegression()).fit(
        _train()["text"], _train()["label"]
    )
    sio.dump(estimator, sklearn_dir / SKOPS_FILE)
    _edit_manifest(sklearn_dir, trusted_types=["builtins.method_descriptor"])
    with pytest.raises(ArtifactError, match=r"allow-list \['builtins.method_descriptor'\]"):
        load_model(sklearn_dir, trust=True)


def test_save_refuses_what_the_loader_would_refuse(tmp_path):
    vectorizer = TfidfVectorizer(tokenizer=str.split, token_pattern=None)
    estimator = make_pipeline(vectorizer, LogisticRegression()).fit(
        _train()["text"], _train()["label"]
    )
    manifest = ModelManifest(name="baseline", kind="sklearn", labels=LABELS)
    with pytest.raises(ArtifactError, match=r"holds a Pipeline of \['TfidfVectorizer', 'Logistic"):
        save_sklearn(tmp_path / "m", estimator, manifest)
    assert not (tmp_path / "m").exists()


def test_an_estimator_of_another_shape_is_refused(sklearn_dir):
    scaled = make_pipeline(StandardScaler(), LogisticRegression()).fit([[0], [1], [2]], [0, 1, 2])
    sio.dump(scaled, sklearn_dir / SKOPS_FILE)
    with pytest.raises(
        ArtifactError,
        match=r"holds a Pipeline of \['StandardScaler', 'LogisticRegression'\], not what this "
        r"pipeline's training stages write \(a Pipeline of a TfidfVectorizer and",
    ):
        load_model(sklearn_dir, trust=True)


def test_legacy_trusted_types_in_a_manifest_are_ignored_with_a_warning(sklearn_dir, caplog):
    _edit_manifest(sklearn_dir, trusted_types=["subprocess.check_output"])
    with caplog.at_level(logging.WARNING):
        model = load_model(sklearn_dir, trust=True)
    assert model.predict(TEXTS) == ["negative", "neutral", "positive"]
    assert "lists 'trusted_types', which is ignored" in caplog.text


# --- files must stay inside the model folder ------------------------------------------------


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_manifest_naming_a_file_outside_the_folder_is_refused(sklearn_dir, paths, where):
    outside = paths.root / "x.skops"  # a valid estimator: following the name would work
    shutil.copy(sklearn_dir / SKOPS_FILE, outside)
    name = "../../x.skops" if where == "parent" else str(outside)
    _edit_manifest(sklearn_dir, files={"estimator": name})
    with pytest.raises(
        ArtifactError, match=r"names the file .*x.skops'; a manifest may name only files inside"
    ):
        load_model(sklearn_dir, project=paths, trust=True)


def test_a_symlink_out_of_the_folder_is_refused(sklearn_dir, paths, tmp_path):
    outside = tmp_path / "elsewhere.skops"
    shutil.move(sklearn_dir / SKOPS_FILE, outside)
    (sklearn_dir / SKOPS_FILE).symlink_to(outside)
    with pytest.raises(
        ArtifactError,
        match=r"pipeline.skops is a symbolic link to .*elsewhere.skops; a model folder and its "
        r"files may link only into the project's DVC cache",
    ):
        load_model(sklearn_dir, project=paths, trust=True)


def test_a_symlink_into_the_dvc_cache_is_followed(sklearn_dir, paths):
    # DVC's cache.type: symlink turns every file of an out into a link into .dvc/cache.
    for name in (SKOPS_FILE, MANIFEST):
        cached = paths.dvc_cache / "files" / "md5" / "ab" / f"cdef-{name}"
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(sklearn_dir / name, cached)
        (sklearn_dir / name).symlink_to(cached)
    model = load_model(sklearn_dir, project=paths)
    assert model.predict(TEXTS) == ["negative", "neutral", "positive"]
    # Without a project there is no DVC cache to trust: no link is followed.
    with pytest.raises(ArtifactError, match="no project was given, so no link is followed"):
        load_model(sklearn_dir, trust=True)


def test_a_symlinked_manifest_or_folder_out_of_bounds_is_refused(sklearn_dir, paths, tmp_path):
    outside = shutil.copytree(sklearn_dir, tmp_path / "outside")
    linked = paths.models_dir / "linked"
    linked.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArtifactError, match=r"linked is a symbolic link to .*outside; a model"):
        load_model(linked, project=paths)
    (sklearn_dir / MANIFEST).unlink()
    (sklearn_dir / MANIFEST).symlink_to(outside / MANIFEST)
    with pytest.raises(ArtifactError, match=r"model.json is a symbolic link to .*outside"):
        read_manifest(sklearn_dir, symlink_root=paths.dvc_cache)


def test_resolve_file_rules(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_text("x")
    assert resolve_file(tmp_path, "sub/f", None) == (tmp_path / "sub" / "f").resolve()
    for bad in ("", ".", "/etc/passwd", "sub/../../f", ".."):
        with pytest.raises(ArtifactError, match="a manifest may name only files inside"):
            resolve_file(tmp_path, bad, None)


# --- damaged artifacts: one ArtifactError each ------------------------------------------------


def test_missing_directory(tmp_path):
    with pytest.raises(ArtifactError, match="no model directory at .*nowhere; train the model"):
        load_model(tmp_path / "nowhere")


def test_directory_without_manifest(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ArtifactError, match="has no model.json manifest; it is not a model dir"):
        load_model(tmp_path / "m")


def test_corrupt_manifest_json(sklearn_dir):
    (sklearn_dir / MANIFEST).write_text('{"name": "baseline", ')
    with pytest.raises(ArtifactError, match="model.json is not valid JSON .*; retrain the model"):
        load_model(sklearn_dir, trust=True)


def test_manifest_failing_the_schema(sklearn_dir):
    _edit_manifest(sklearn_dir, kind="xgboost", colour="blue")
    with pytest.raises(ArtifactError, match=r"model.json is corrupt: kind: .*; colour: Extra"):
        load_model(sklearn_dir, trust=True)


def test_placeholder_manifest_without_reason_fails_the_schema(tmp_path):
    save_placeholder(tmp_path / "m", "distilbert", LABELS, "no CUDA device")
    _edit_manifest(tmp_path / "m", reason=None)
    with pytest.raises(ArtifactError, match="corrupt: <root>: .*a placeholder needs a reason"):
        load_model(tmp_path / "m")


def test_labels_differing_from_labels_json(sklearn_dir):
    with pytest.raises(
        ArtifactError,
        match=r"trained for labels \['negative', 'neutral', 'positive'\], but the data has "
        r"\['neg', 'pos'\] \(labels.json\)",
    ):
        load_model(sklearn_dir, expected_labels=["neg", "pos"], trust=True)


def test_manifest_labels_not_matching_the_estimator(sklearn_dir):
    _edit_manifest(sklearn_dir, labels=["negative", "neutral"])
    with pytest.raises(
        ArtifactError,
        match=r"pipeline.skops predicts classes \[0, 1, 2\], but its manifest lists 2 labels "
        r"\['negative', 'neutral'\] \(class ids 0..1\)",
    ):
        load_model(sklearn_dir, trust=True)


def test_corrupt_skops_file(sklearn_dir):
    (sklearn_dir / SKOPS_FILE).write_bytes(os.urandom(4096))
    with pytest.raises(
        ArtifactError,
        match=r"pipeline.skops is not a readable skops file \(BadZipFile: .*\); it is damaged",
    ):
        load_model(sklearn_dir, trust=True)


def test_truncated_skops_file(sklearn_dir):
    file = sklearn_dir / SKOPS_FILE
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(ArtifactError, match=r"pipeline.skops is not a readable skops file"):
        load_model(sklearn_dir, trust=True)


def test_missing_skops_file(sklearn_dir):
    (sklearn_dir / SKOPS_FILE).unlink()
    with pytest.raises(ArtifactError, match="lists pipeline.skops in its manifest but the file"):
        load_model(sklearn_dir, trust=True)


# --- where a model may come from ----------------------------------------------------------------


def test_placeholder_refused_when_a_real_model_is_required(tmp_path):
    save_placeholder(tmp_path / "m", "distilbert", LABELS, "disabled in params")
    with pytest.raises(
        ArtifactError, match="placeholder for model 'distilbert' .skipped: disabled in params"
    ):
        load_model(tmp_path / "m", require_real=True)


def test_sklearn_outside_the_project_models_is_refused_unless_trusted(sklearn_dir, paths, tmp_path):
    elsewhere = shutil.copytree(sklearn_dir, tmp_path / "downloads" / "model")
    with pytest.raises(ArtifactError, match="refusing to load the scikit-learn artifact at"):
        load_model(elsewhere, project=paths, trust=False)
    model = load_model(elsewhere, project=paths, trust=True)
    assert model.predict(TEXTS) == ["negative", "neutral", "positive"]
    # A relative path that climbs out of models/ is outside too.
    sneaky = paths.models_dir / ".." / ".." / "downloads" / "model"
    with pytest.raises(ArtifactError, match="refusing to load the scikit-learn artifact at"):
        load_model(sneaky, project=paths, trust=False)


def test_trust_comes_from_the_environment_by_default(sklearn_dir, monkeypatch):
    from sentiment_pipeline.settings import get_settings

    monkeypatch.setenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", "false")
    get_settings.cache_clear()
    try:
        with pytest.raises(ArtifactError, match="refusing to load"):
            load_model(sklearn_dir)
        monkeypatch.setenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", "true")
        get_settings.cache_clear()
        assert load_model(sklearn_dir).labels == LABELS
        with pytest.raises(ArtifactError, match="refusing to load"):
            load_model(sklearn_dir, trust=False)
    finally:
        get_settings.cache_clear()


# --- atomic saves -----------------------------------------------------------------------------


def test_interrupted_save_leaves_no_target(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sklearn_model, "write_manifest", explode)
    target = tmp_path / "models" / "m"
    with pytest.raises(RuntimeError, match="disk full"):
        save_tiny_model(target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_interrupted_save_keeps_the_previous_model(sklearn_dir, monkeypatch):
    monkeypatch.setattr(
        sklearn_model, "write_manifest", lambda *a: (_ for _ in ()).throw(RuntimeError("killed"))
    )
    with pytest.raises(RuntimeError, match="killed"):
        save_tiny_model(sklearn_dir, run_id="train-run-2")
    assert load_model(sklearn_dir, trust=True).manifest.mlflow_run_id == "train-run-1"
    assert [p.name for p in sklearn_dir.parent.iterdir()] == [sklearn_dir.name]

