"""predict, serve and analyze open a model one way: one trust rule, one placeholder refusal."""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sentiment_pipeline.evaluation.best_model import BestModel
from sentiment_pipeline.insights import pipeline as analyze
from sentiment_pipeline.io import write_json
from sentiment_pipeline.models.artifacts import manifest as manifests
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    write_manifest,
)
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.predict import stream as predict
from sentiment_pipeline.serving import server
from sentiment_pipeline.settings import get_settings
from synthetic import LABELS
from tiny_sklearn import save_tiny_model

NAME = "sentiment-classifier"
TEXT = "great friendly crew"


@pytest.fixture
def served(monkeypatch) -> list[tuple[str, int]]:
    """uvicorn.run replaced by one request to the app run_server built: (backend, status)."""
    import uvicorn

    answers: list[tuple[str, int]] = []

    def run(app, *, factory: bool, **options) -> None:
        assert not factory  # a single worker serves the model run_server opened
        with TestClient(app) as client:
            status = client.post("/predict", json={"inputs": TEXT}).status_code
            answers.append((client.get("/info").json()["backend"], status))

    monkeypatch.setattr(uvicorn, "run", run)
    return answers


def entry_points(project: ProjectPaths, manager) -> dict[str, Callable[..., object]]:
    """Each command's way to open `spec` (with --trust, --no-trust or neither)."""
    config = manager(project, "serve.max_wait_ms=0", "serve.reload_interval_s=0").config

    def serve(spec: str, trust: bool | None) -> None:
        server.run_server(config, project, model=spec, host=None, port=None, workers=1,
                          trust=trust)

    return {
        "predict": lambda spec, trust: predict.open_model(
            spec, model_name=NAME, paths=project, trust=trust),
        "analyze": lambda spec, trust: analyze.open_model(
            spec, model_name=NAME, paths=project, trust=trust),
        "serve": serve,
    }


def refusals(opens: dict[str, Callable[..., object]], spec: str, trust: bool | None) -> set:
    """The messages each entry point refuses `spec` with (one each)."""
    messages = {}
    for name, open_ in opens.items():
        with pytest.raises(ArtifactError) as refused:
            open_(spec, trust)
        messages[name] = str(refused.value)
    return set(messages.values())


def test_a_folder_outside_models_needs_trust_in_every_command(
    project, manager, served, tmp_path, monkeypatch
):
    monkeypatch.delenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", raising=False)
    get_settings.cache_clear()
    elsewhere = tmp_path / "downloads" / "model"
    save_tiny_model(elsewhere)
    opens = entry_points(project, manager)

    for trust in (None, False):
        (message,) = refusals(opens, str(elsewhere), trust)  # the same words from all three
        assert message.startswith(f"refusing to load the scikit-learn artifact at {elsewhere}")
        assert "--trust" in message and "SENTIMENT_PIPELINE_TRUST_ARTIFACTS=true" in message

    assert predict.open_model(str(elsewhere), model_name=NAME, paths=project,
                              trust=True).predict([TEXT]) == ["positive"]
    model, info = analyze.open_model(str(elsewhere), model_name=NAME, paths=project, trust=True)
    assert info.backend == "sklearn" and model.predict([TEXT]) == ["positive"]
    opens["serve"](str(elsewhere), True)
    assert served == [("sklearn", 200)]

    # and the environment's setting is the same --trust for all three
    monkeypatch.setenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", "true")
    get_settings.cache_clear()
    for open_ in opens.values():
        open_(str(elsewhere), None)
    assert len(served) == 2
    get_settings.cache_clear()


def test_a_placeholder_is_refused_by_every_command_in_the_same_words(project, manager, served):
    save_placeholder(project.distilbert_model, "distilbert", list(LABELS), "no CUDA device")

    for trust in (None, True):
        (message,) = refusals(entry_points(project, manager), str(project.distilbert_model),
                              trust)
        assert message == (
            f"{project.distilbert_model} is a placeholder for model 'distilbert' (skipped: "
            "no CUDA device), not a trained model; train it or name another model"
        )
    assert served == []


def test_a_malformed_spec_is_refused_by_every_command_in_the_same_words(
    project, manager, served
):
    (message,) = refusals(entry_points(project, manager), "models:/x/latest", None)
    assert message.startswith("cannot resolve the model 'models:/x/latest'; expected")


def count_manifest_reads(monkeypatch) -> Counter[Path]:
    """Every read_manifest call of the package (each module's imported name), by folder."""
    reads: Counter[Path] = Counter()
    original = manifests.read_manifest

    def counting(path, **options):
        reads[Path(path)] += 1
        return original(path, **options)

    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if name.startswith("sentiment_pipeline") and getattr(module, "read_manifest", None) is \
                original:
            monkeypatch.setattr(module, "read_manifest", counting)
    return reads


def test_serve_reads_each_manifest_once(project, manager, served, tiny_transformer_model,
                                        monkeypatch):
    primary = shutil.copytree(tiny_transformer_model, project.distilbert_model)
    variants = {}
    for backend, precision in (("onnx", "fp32"), ("onnx-int8", "int8")):
        folder = project.models_dir / f"export-{backend}"  # a manifest without its graph
        folder.mkdir()
        write_manifest(folder, ModelManifest(name="distilbert", kind="onnx", labels=list(LABELS),
                                             precision=precision))
        variants[backend] = folder
    write_json(project.best_model, BestModel(
        name="distilbert", path=primary.relative_to(project.root).as_posix(),
        kind="transformers", primary_metric="macro_f1", score=0.9, metrics={}, mlflow_run_id=None,
        evaluation_run_id=None, evaluated=["distilbert"], skipped={},
        variants={key: folder.relative_to(project.root).as_posix()
                  for key, folder in variants.items()},
    ).model_dump(mode="json"))
    config = manager(project, "serve.max_wait_ms=0", "serve.reload_interval_s=0").config
    reads = count_manifest_reads(monkeypatch)

    # auto tries int8, then fp32 ONNX (neither has a graph), then serves torch
    server.run_server(config, project, model=str(primary), host=None, port=None, workers=1)

    assert served == [("torch", 200)]
    assert reads == Counter({primary: 1, **{folder: 1 for folder in variants.values()}})
