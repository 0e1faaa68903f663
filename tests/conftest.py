"""Shared fixtures (a temporary project, processed data, tiny models); property suites' profiles."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import is_hypothesis_test

import property_suites
from sentiment_pipeline.config.manager import ConfigurationManager
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import get_settings
from synthetic import LABELS, make_processed_splits

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "airline_tweets.csv"


property_suites.load_profile()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Time limits of hypothesis tests: a property suite's scale with the profile's inputs,
    and every one ends the run when it fires.

    pytest-timeout's default (a signal) fails the test inside hypothesis, which takes it for a
    failed input and replays the hung input to shrink it: the run hangs. Its `thread` method
    dumps every thread's stack and exits.
    """
    option = config.getoption("timeout")
    base_s = float((config.getini("timeout") if option is None else option) or 0)
    for item in items:
        if not is_hypothesis_test(getattr(item, "obj", None)):
            continue
        marker = item.get_closest_marker("timeout")
        limit_s = marker.args[0] if marker and marker.args else base_s
        if item.path.name.startswith(property_suites.SUITE_PREFIX):
            limit_s = property_suites.timeout_s(limit_s)
        item.add_marker(pytest.mark.timeout(limit_s, method="thread"), append=False)
    run_containers_last(items)


# A container test's fixtures may build an image from nothing (minutes on 2 cores).
CONTAINER_TIMEOUT_S = 1800


def run_containers_last(items: list[pytest.Item]) -> None:
    """Tests on real containers run after all the others, so that the images `.ci/run` builds
    in the background meanwhile are ready when they start; their time limit covers a build."""
    on_containers = [item for item in items if "containers" in getattr(item, "fixturenames", ())]
    for item in on_containers:
        item.add_marker(pytest.mark.timeout(CONTAINER_TIMEOUT_S), append=False)
        items.remove(item)
    items.extend(on_containers)


def pytest_terminal_summary(terminalreporter) -> None:
    lines = property_suites.summary()
    if lines:
        terminalreporter.section(
            f"property suites, hypothesis profile {property_suites.profile_name()!r}"
        )
        for line in lines:
            terminalreporter.write_line(line)
    import podman  # the container checks' findings (image sizes, start times), when any ran

    if podman.REPORT:
        terminalreporter.section("container checks")
        for line in podman.REPORT:
            terminalreporter.write_line(line)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store: creating one costs seconds, copying it does not."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlruns.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def tracking_uri_kept() -> Iterator[None]:
    """MLflow 3's set_tracking_uri also writes MLFLOW_TRACKING_URI into os.environ: put the
    variable back after every test, or a store one test set up is the registry every later
    test's subprocess (a `serve` looking for the aspect champion) asks."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_db_template: Path
) -> ProjectPaths:
    """An empty project (params.yaml from the repo, a fresh MLflow store) as the working dir."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO_ROOT / "params.yaml", root / "params.yaml")
    shutil.copy(mlflow_db_template, root / "mlruns.db")
    monkeypatch.chdir(root)
    for var in ("MLFLOW_TRACKING_URI", "SENTIMENT_PIPELINE_OPTUNA_STORAGE"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield ProjectPaths.at(root)
    get_settings.cache_clear()


@pytest.fixture
def processed(project: ProjectPaths) -> ProjectPaths:
    """`project` with data/processed/{train,val,test}.parquet and labels.json written."""
    project.processed_dir.mkdir(parents=True)
    for name, frame in make_processed_splits().items():
        frame.to_parquet(project.split(name), index=False)
    project.labels.write_text(json.dumps(LABELS))
    return project


def configure(project: ProjectPaths, *overrides: str) -> ConfigurationManager:
    """The project's params.yaml with overrides applied."""
    return ConfigurationManager(project.root / "params.yaml", overrides)


@pytest.fixture
def manager():
    return configure


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DistilBERT checkpoint (random weights, WordPiece tokenizer), built once per run.

    Read-only for tests: point train.distilbert.model_name_or_path at it.
    """
    pytest.importorskip("transformers")
    import torch

    from tiny_transformer import build_tiny_transformer

    # A 30k-parameter model gains nothing from threads; on busy shared cores they cost 5-10x.
    torch.set_num_threads(1)

    return build_tiny_transformer(tmp_path_factory.mktemp("tiny-distilbert") / "model")


@pytest.fixture(scope="session")
def tiny_transformer_model(
    tiny_transformer: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A ready `transformers` model folder (model.json, safetensors, tokenizer) of the tiny model.

    Read-only for tests: copy it (shutil.copytree) before changing anything in it.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from sentiment_pipeline.models.artifacts.manifest import ModelManifest
    from sentiment_pipeline.models.artifacts.transformers_model import save_transformers
    from synthetic import LABELS

    target = tmp_path_factory.mktemp("tiny-model") / "distilbert_model"
    manifest = ModelManifest(
        name="distilbert",
        kind="transformers",
        labels=list(LABELS),
        params={"max_length": 32},
        metrics={"test_macro_f1": 0.5},
    )
    save_transformers(
        target,
        AutoModelForSequenceClassification.from_pretrained(tiny_transformer),
        AutoTokenizer.from_pretrained(tiny_transformer),
        manifest,
    )
    return target


@pytest.fixture(scope="session")
def tiny_pair_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ready pair (aspect) model folder: a tiny 2-layer BERT (segment ids), random weights,
    manifest input "pair" with the aspect marked. Read-only for tests: copy it before changing it.
    """
    pytest.importorskip("transformers")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from sentiment_pipeline.models.artifacts.manifest import ModelManifest
    from sentiment_pipeline.models.artifacts.transformers_model import save_transformers
    from synthetic import LABELS
    from tiny_transformer import build_tiny_transformer

    checkpoint = build_tiny_transformer(
        tmp_path_factory.mktemp("tiny-bert") / "model", architecture="bert"
    )
    target = tmp_path_factory.mktemp("tiny-pair-model") / "aspect_model"
    manifest = ModelManifest(
        name="aspects", kind="transformers", labels=list(LABELS), input="pair",
        pair_style="marked", params={"max_length": 48},
    )
    save_transformers(
        target,
        AutoModelForSequenceClassification.from_pretrained(checkpoint),
        AutoTokenizer.from_pretrained(checkpoint),
        manifest,
    )
    return target


@pytest.fixture(scope="session")
def exported(tiny_transformer_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """(source, fp32, int8) folders: the tiny model copied, exported to ONNX once per run and
    quantised once (an export costs seconds; three test modules use it).

    Read-only for tests: copy a folder (shutil.copytree) before changing anything in it.
    """
    for name in ("onnxruntime", "onnxscript"):
        pytest.importorskip(name)
    from sentiment_pipeline.config.export import OnnxExportConfig
    from sentiment_pipeline.models.conversion.int8 import quantize_int8
    from sentiment_pipeline.models.conversion.onnx_export import export_transformers

    root = tmp_path_factory.mktemp("onnx")
    source = root / "distilbert_model"
    shutil.copytree(tiny_transformer_model, source)
    config = OnnxExportConfig()
    export_transformers(source, root / "fp32", config)
    quantize_int8(root / "fp32", root / "int8", config)
    return source, root / "fp32", root / "int8"


@pytest.fixture(scope="session")
def containers(tmp_path_factory: pytest.TempPathFactory):
    """podman with this machine's configuration; containers a test starts are removed after."""
    from podman import podman_session, require_root

    require_root()
    with podman_session(tmp_path_factory.mktemp("podman")) as session:
        yield session


@pytest.fixture(scope="session")
def serve_image(containers) -> str:
    """The Dockerfile's `serve` target built from this checkout, once per run."""
    from podman import make_images

    return make_images(containers, ("serve",))["serve"]


@pytest.fixture(scope="session")
def pipeline_image(containers) -> str:
    """The Dockerfile's `pipeline` target built from this checkout, once per run."""
    from podman import make_images

    return make_images(containers, ("pipeline",))["pipeline"]
