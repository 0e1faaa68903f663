"""The register_model stage against the local SQLite store and a real `mlflow server`."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mlflow_server import mlflow_server
from sentiment_pipeline.config.register import RegisterConfig
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.evaluation.best_model import BestModel
from sentiment_pipeline.io import write_json
from sentiment_pipeline.models.artifacts.manifest import content_hash
from sentiment_pipeline.registry import pyfunc_code, register_model, registration
from sentiment_pipeline.settings import get_settings
from synthetic import LABELS
from tiny_sklearn import save_tiny_model

NAME = "sentiment-test"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("server", marks=pytest.mark.slow)])
def store(request, processed, monkeypatch):
    """'sqlite': the project's default local store; 'server': MLFLOW_TRACKING_URI -> a server."""
    if request.param == "server":
        url = request.getfixturevalue("server_url")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        get_settings.cache_clear()
    yield request.param
    get_settings.cache_clear()


def _write_champion(paths, score: float, name: str = "baseline", C: float = 10.0) -> BestModel:
    """best_model.json naming a tiny model; another C makes another model content."""
    save_tiny_model(paths.model_dir(name), name=name, C=C)
    return _write_record(paths, score, name)


def _write_record(paths, score: float, name: str = "baseline") -> BestModel:
    """best_model.json naming the model folder `name` as the champion."""
    best = BestModel(
        name=name,
        path=paths.model_dir(name).relative_to(paths.root).as_posix(),
        kind="sklearn",
        primary_metric="macro_f1",
        score=score,
        metrics={"macro_f1": score},
        mlflow_run_id="train-run-1",
        evaluation_run_id="eval-run-1",
        evaluated=[name],
        skipped={},
    )
    write_json(paths.best_model, best.model_dump(mode="json"))
    return best


def _client(paths):
    from mlflow.tracking import MlflowClient

    from sentiment_pipeline import tracking

    uri = tracking.configure(paths)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_registration_moves_champion_to_previous_and_loads_back(store, processed):
    import mlflow

    _write_champion(processed, 0.9)
    config = RegisterConfig(model_name=NAME, min_score=0.6)

    first = register_model.run(config, processed)
    assert first.registered and first.version == "1" and first.previous_version is None
    _write_champion(processed, 0.9, C=1.0)  # retrained: another content
    second = register_model.run(config, processed)
    assert second.registered and second.version == "2" and second.previous_version == "1"
    assert not second.already_registered and second.content_hash != first.content_hash

    saved = json.loads(processed.registration.read_text())
    assert saved == second.model_dump(mode="json")
    assert saved["model_uri"] == f"models:/{NAME}@champion"
    assert saved["alias"] == "champion" and saved["champion"] == "baseline"
    assert saved["score"] == 0.9

    client = _client(processed)
    # the SQLite store answers int versions, the REST store str
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(NAME, "previous").version) == "1"
    run = client.get_run(second.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "sentiment-pipeline/register_model"
    assert run.data.tags["champion"] == "baseline"
    if store == "sqlite":
        assert processed.mlflow_db.is_file()

    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    out = model.predict(pd.DataFrame({"text": ["awful delayed flight", "great friendly crew"]}))
    assert list(out.columns) == ["label", *(f"p_{label}" for label in LABELS)]
    assert out["label"].tolist() == ["negative", "positive"]
    assert out[[f"p_{label}" for label in LABELS]].sum(axis=1).round(6).tolist() == [1.0, 1.0]


def test_registration_is_pickle_free_and_records_the_content_hash(processed, caplog):
    """Models-from-code: the registry holds our code file and the model folders, no pickle."""
    import mlflow

    from sentiment_pipeline.models.artifacts.manifest import ModelManifest, write_manifest
    from sentiment_pipeline.models.artifacts.placeholder import save_placeholder

    best = _write_champion(processed, 0.9)
    onnx, int8 = processed.root / "models/advanced/onnx", processed.root / "models/advanced/int8"
    onnx.mkdir(parents=True)
    (onnx / "model.onnx").write_bytes(b"stand-in")
    write_manifest(onnx, ModelManifest(name="distilbert", kind="onnx", labels=LABELS,
                                       precision="fp32", files={"model": "model.onnx"}))
    save_placeholder(int8, "distilbert", LABELS, "onnxruntime missing")
    variants = {"onnx": "models/advanced/onnx", "onnx-int8": "models/advanced/int8"}
    write_json(processed.best_model, {**best.model_dump(mode="json"), "variants": variants})

    result = register_model.run(RegisterConfig(model_name=NAME, min_score=0.6), processed)

    expected = content_hash(processed.baseline_model)
    assert result.content_hash == expected
    assert result.variants == {"onnx": "models/advanced/onnx"}  # not the placeholder
    assert json.loads(processed.registration.read_text())["content_hash"] == expected
    client = _client(processed)
    version = client.get_model_version(NAME, result.version)
    assert version.tags["content_hash"] == expected
    assert version.tags["content_hash.onnx"] == content_hash(onnx)
    logged = Path(mlflow.artifacts.download_artifacts(
        client.get_model_version_download_uri(NAME, result.version)
    ))
    files = sorted(p.relative_to(logged).as_posix() for p in logged.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))], files
    assert "pyfunc_code.py" in files
    assert {"artifacts/logistic_baseline/model.json", "artifacts/onnx/model.onnx"} <= set(files)
    # the user-facing check (never done by the pipeline itself): MLflow loads it and predicts
    out = mlflow.pyfunc.load_model(result.model_uri).predict(
        pd.DataFrame({"text": ["awful delayed flight", "great friendly crew"]})
    )
    assert out["label"].tolist() == ["negative", "positive"]


def _versions(client, name: str) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def _aliases(client, name: str) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    aliases = {}
    for alias in ("champion", "previous"):
        try:
            aliases[alias] = str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException:  # the alias is not set
            continue
    return aliases


def test_the_same_champion_registered_twice_is_one_version(store, processed, caplog):
    name = f"{NAME}-again"  # the server outlives one test
    _write_champion(processed, 0.9)
    config = RegisterConfig(model_name=name, min_score=0.6)
    first = register_model.run(config, processed)
    client = _client(processed)
    experiment = client.get_experiment_by_name("sentiment-pipeline/register_model")
    runs = len(client.search_runs([experiment.experiment_id]))

    with caplog.at_level(logging.INFO, logger=registration.__name__):
        second = register_model.run(config, processed)

    assert second.registered and second.already_registered and not first.already_registered
    assert (second.version, second.run_id, second.content_hash, second.previous_version) == (
        first.version, first.run_id, first.content_hash, None
    )
    assert json.loads(processed.registration.read_text()) == second.model_dump(mode="json")
    assert json.loads(processed.registration.read_text())["already_registered"] is True
    assert _versions(client, name) == [first.version]
    assert _aliases(client, name) == {"champion": first.version}
    assert len(client.search_runs([experiment.experiment_id])) == runs  # nothing logged
    assert f"{name} version {first.version} already holds this champion" in caplog.text
    assert "nothing new was registered" in caplog.text

    # evaluated anew with another score: still the same version, with a warning that says so
    _write_record(processed, 0.95)
    with caplog.at_level(logging.INFO, logger=registration.__name__):
        third = register_model.run(config, processed)
    assert third.already_registered and third.version == first.version and third.score == 0.95
    assert "was registered with macro_f1 0.9, this evaluation scores it 0.95" in caplog.text

    # the same content under another registered name is not that name's version
    other = register_model.run(RegisterConfig(model_name=f"{name}-other", min_score=0.6),
                               processed)
    assert not other.already_registered and other.version == "1"


def test_a_former_champion_registered_again_is_champion_again_without_a_new_version(
    store, processed
):
    name = f"{NAME}-back"  # the server outlives one test
    _write_champion(processed, 0.9)
    kept = processed.root / "kept"
    shutil.copytree(processed.baseline_model, kept)
    config = RegisterConfig(model_name=name, min_score=0.6)
    first = register_model.run(config, processed)
    _write_champion(processed, 0.8, C=1.0)
    second = register_model.run(config, processed)
    shutil.rmtree(processed.baseline_model)
    shutil.copytree(kept, processed.baseline_model)  # the first model, back from a copy
    _write_record(processed, 0.9)

    third = register_model.run(config, processed)

    assert not second.already_registered and second.version == "2"
    assert third.already_registered
    assert (third.version, third.previous_version) == (first.version, second.version)
    client = _client(processed)
    assert _versions(client, name) == ["1", "2"]
    assert _aliases(client, name) == {"champion": "1", "previous": "2"}


def test_a_champion_with_another_set_of_variants_is_another_version(processed):
    """Versions match on every folder they hold: adding an ONNX variant registers anew."""
    from sentiment_pipeline.models.artifacts.manifest import ModelManifest, write_manifest

    name = f"{NAME}-variants"
    best = _write_champion(processed, 0.9)
    config = RegisterConfig(model_name=name, min_score=0.6)
    first = register_model.run(config, processed)
    onnx = processed.root / "models/advanced/onnx"
    onnx.mkdir(parents=True)
    (onnx / "model.onnx").write_bytes(b"stand-in")
    write_manifest(onnx, ModelManifest(name="distilbert", kind="onnx", labels=LABELS,
                                       precision="fp32", files={"model": "model.onnx"}))
    write_json(processed.best_model,
               {**best.model_dump(mode="json"), "variants": {"onnx": "models/advanced/onnx"}})

    second = register_model.run(config, processed)
    third = register_model.run(config, processed)

    assert second.content_hash == first.content_hash
    assert not second.already_registered and second.version == "2"
    assert third.already_registered and third.version == "2"
    assert third.variants == {"onnx": "models/advanced/onnx"}


def test_the_registered_champion_resolves_from_the_store(store, processed):
    """resolve_model downloads the model folder from either store (a server: mlflow-artifacts:)."""
    import numpy as np

    from sentiment_pipeline.models.artifacts.loader import load_model
    from sentiment_pipeline.registry.lookup import NotRegistered
    from sentiment_pipeline.registry.resolve import resolve_model

    name = f"{NAME}-resolved"  # the server outlives one test
    _write_champion(processed, 0.9)
    result = register_model.run(RegisterConfig(model_name=name, min_score=0.6), processed)

    resolved = resolve_model(None, model_name=name, paths=processed)

    assert (resolved.source, resolved.version) == (f"models:/{name}@champion", result.version)
    assert content_hash(resolved.path) == result.content_hash
    # the registry's copy carries the champion's test metrics (GET /info shows them)
    registered = load_model(resolved.path, trust=resolved.trusted)
    assert registered.manifest.metrics["test_macro_f1"] == 0.9
    texts = ["awful delayed flight", "great friendly crew"]
    np.testing.assert_allclose(
        load_model(resolved.path, trust=resolved.trusted).predict_proba(texts),
        load_model(processed.baseline_model, project=processed).predict_proba(texts),
    )
    # the store's answer for a missing alias reads as "not registered" from either store
    with pytest.raises(NotRegistered, match=f"models:/{name}@nope is not in the MLflow registry"):
        resolve_model(f"models:/{name}@nope", model_name=name, paths=processed)
    fallback = resolve_model(None, model_name=f"{name}-absent", paths=processed)
    assert fallback.source == str(processed.best_model)


def test_registration_refused_below_min_score(store, processed):
    name = f"{NAME}-refused"  # the server outlives one test
    _write_champion(processed, 0.5)
    result = register_model.run(RegisterConfig(model_name=name, min_score=0.6), processed)

    assert result.registered is False
    saved = json.loads(processed.registration.read_text())
    assert saved["registered"] is False
    assert saved["model_name"] == name and saved["champion"] == "baseline"
    assert (saved["score"], saved["min_score"]) == (0.5, 0.6)
    assert "score 0.5000 below register.min_score 0.6" in saved["reason"]
    assert _client(processed).search_registered_models(f"name = '{name}'") == []


def test_missing_champion_record_names_the_stage(processed):
    with pytest.raises(PipelineError, match="best_model.json; run the model_evaluation stage"):
        register_model.run(RegisterConfig(), processed)
    assert not processed.registration.exists()


def test_corrupt_champion_record(processed):
    processed.best_model.parent.mkdir(parents=True)
    processed.best_model.write_text('{"name": "baseline"}')
    with pytest.raises(PipelineError, match="not a champion record written by model_evaluation"):
        register_model.run(RegisterConfig(), processed)


def test_pyfunc_requires_a_text_column(processed):
    save_tiny_model(processed.baseline_model)

    class Context:
        artifacts = {"model_dir": str(processed.baseline_model)}

    model = pyfunc_code.SentimentPyfunc()
    model.load_context(Context())
    with pytest.raises(PipelineError, match=r"expected a column 'text' .*found \['body'\]"):
        model.predict(None, pd.DataFrame({"body": ["x"]}))


def test_champion_of_the_evaluation_stage_is_registered(processed):
    from sentiment_pipeline.config.evaluation import EvaluationConfig
    from sentiment_pipeline.evaluation import model_evaluation
    from sentiment_pipeline.models.artifacts.placeholder import save_placeholder

    save_tiny_model(processed.lightgbm_model, name="lightgbm")
    save_placeholder(processed.distilbert_model, "distilbert", LABELS, "disabled")
    best = model_evaluation.run(
        EvaluationConfig(models=["lightgbm", "distilbert"], behavioural_tests=False), processed
    )
    result = register_model.run(RegisterConfig(model_name=NAME, min_score=0.5), processed)
    assert result.registered and result.champion == "lightgbm" == best.name
    assert result.score == best.score
    assert _client(processed).get_run(result.run_id).data.tags["evaluation_run_id"] == (
        best.evaluation_run_id
    )


@pytest.mark.slow
def test_transformers_model_is_evaluated_and_registered(processed, tiny_transformer):
    import mlflow

    from sentiment_pipeline.config.evaluation import EvaluationConfig
    from sentiment_pipeline.evaluation import model_evaluation
    from sentiment_pipeline.models.artifacts.manifest import ModelManifest, copy_model
    from sentiment_pipeline.models.artifacts.transformers_model import transformers_manifest

    manifest = ModelManifest(
        name="distilbert", kind="transformers", labels=LABELS, params={"max_length": 32}
    )
    copy_model(tiny_transformer, processed.distilbert_model, transformers_manifest(manifest))
    save_tiny_model(processed.baseline_model)
    best = model_evaluation.run(
        EvaluationConfig(models=["baseline", "distilbert"], behavioural_tests=False), processed
    )
    assert best.evaluated == ["baseline", "distilbert"]
    assert (processed.evaluation_dir / "distilbert_test_metrics.json").is_file()

    # register the (untrained) transformer itself: the pyfunc wraps every model kind
    write_json(
        processed.best_model,
        best.model_copy(
            update={"name": "distilbert", "kind": "transformers",
                    "path": "models/advanced/distilbert_model"}
        ).model_dump(mode="json"),
    )
    result = register_model.run(RegisterConfig(model_name=NAME, min_score=0.0), processed)
    assert result.registered and result.champion == "distilbert"
    out = mlflow.pyfunc.load_model(result.model_uri).predict(
        pd.DataFrame({"text": ["great flight", "awful crew", "gate"]})
    )
    assert out["label"].isin(LABELS).all()
    assert out[[f"p_{label}" for label in LABELS]].sum(axis=1).round(6).tolist() == [1.0] * 3
