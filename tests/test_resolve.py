"""Model resolution: folders, models:/ URIs from a local registry, the cache and the fallback."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from mlflow_server import free_port
from sentiment_pipeline import tracking
from sentiment_pipeline.config.register import RegisterConfig
from sentiment_pipeline.evaluation.best_model import BestModel
from sentiment_pipeline.io import write_json
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    content_hash,
    read_manifest,
    write_manifest,
)
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import cache, lookup, register_model, resolve
from sentiment_pipeline.registry.lookup import NotRegistered, RegistryUnavailable, alias_version
from sentiment_pipeline.registry.resolve import ResolvedModel, resolve_model
from sentiment_pipeline.registry.specs import RegistrySpec
from sentiment_pipeline.settings import get_settings
from synthetic import LABELS
from tiny_sklearn import save_tiny_model

NAME = "sentiment-resolve"
TEXTS = ["awful delayed flight", "great friendly crew", "the gate"]
ONNX = "models/advanced/distilbert_onnx"


def write_champion(paths: ProjectPaths, variants: dict[str, str] | None = None) -> BestModel:
    best = BestModel(
        name="baseline",
        path=paths.baseline_model.relative_to(paths.root).as_posix(),
        kind="sklearn",
        primary_metric="macro_f1",
        score=0.9,
        metrics={"macro_f1": 0.9},
        mlflow_run_id=None,
        evaluation_run_id=None,
        evaluated=["baseline"],
        skipped={},
        variants=variants or {},
    )
    write_json(paths.best_model, best.model_dump(mode="json"))
    return best


def write_fake_onnx(folder: Path) -> None:
    """A folder with an onnx manifest: enough to be registered and resolved (not to run)."""
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"not really onnx")
    write_manifest(
        folder,
        ModelManifest(
            name="distilbert", kind="onnx", labels=list(LABELS), precision="fp32",
            files={"model": "model.onnx"},
        ),
    )


@pytest.fixture(scope="module")
def registered(tmp_path_factory, mlflow_db_template):
    """A project whose local registry holds NAME version 1 (C=10) and version 2 (C=0.1, with an
    onnx variant) as champion; built once, since logging a model takes seconds."""
    root = tmp_path_factory.mktemp("resolve") / "project"
    root.mkdir()
    shutil.copy(mlflow_db_template, root / "mlruns.db")
    paths = ProjectPaths.at(root)
    config = RegisterConfig(model_name=NAME, min_score=0.5)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        get_settings.cache_clear()
        save_tiny_model(paths.baseline_model)
        write_champion(paths)
        assert register_model.run(config, paths).version == "1"
        save_tiny_model(paths.baseline_model, C=0.1)
        write_fake_onnx(paths.resolve(ONNX))
        write_champion(paths, {"onnx": ONNX})
        assert register_model.run(config, paths).version == "2"
        yield paths
    get_settings.cache_clear()


@pytest.fixture
def project_with_registry(registered, monkeypatch):
    """`registered` with an empty download cache and no MLFLOW_TRACKING_URI."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    shutil.rmtree(registered.root / ".cache", ignore_errors=True)
    yield registered
    get_settings.cache_clear()


@pytest.fixture
def closed_registry(monkeypatch):
    """MLFLOW_TRACKING_URI -> a port nothing listens on."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def predictions(path: Path, **kwargs) -> np.ndarray:
    return load_model(path, **kwargs).predict_proba(TEXTS)


def variant_paths(resolved: ResolvedModel) -> dict[str, Path]:
    return {key: folder.path for key, folder in resolved.variants.items()}


# --- folders -------------------------------------------------------------------------------


def test_a_directory_resolves_to_itself(project, tmp_path, monkeypatch):
    monkeypatch.delenv("SENTIMENT_PIPELINE_TRUST_ARTIFACTS", raising=False)
    get_settings.cache_clear()
    save_tiny_model(project.baseline_model)
    spec = "models/baseline/logistic_baseline"

    resolved = resolve_model(spec, model_name=NAME, paths=project)

    assert resolved.path == project.baseline_model
    assert resolved.manifest == read_manifest(project.baseline_model)
    assert (resolved.name, resolved.source, resolved.version) == ("baseline", spec, None)
    assert resolved.variants == {} and resolved.alias is None
    assert resolved.trusted  # under the project's models/, whatever --no-trust says
    assert resolve_model(spec, model_name=NAME, paths=project, trust=False).trusted
    elsewhere = shutil.copytree(project.baseline_model, tmp_path / "elsewhere")
    assert resolve_model(str(elsewhere), model_name=NAME, paths=project).trusted is False
    assert resolve_model(str(elsewhere), model_name=NAME, paths=project, trust=True).trusted
    get_settings.cache_clear()


def test_the_champion_folder_carries_its_recorded_variants(project):
    save_tiny_model(project.baseline_model)
    write_fake_onnx(project.resolve(ONNX))
    save_placeholder(project.resolve(ONNX + "_int8"), "distilbert", list(LABELS), "disabled")
    write_champion(project, {"onnx": ONNX, "onnx-int8": ONNX + "_int8"})

    resolved = resolve_model(str(project.baseline_model), model_name=NAME, paths=project)

    assert variant_paths(resolved) == {"onnx": project.resolve(ONNX)}  # not the placeholder
    assert resolved.variants["onnx"].manifest.kind == "onnx"


def test_a_placeholder_or_missing_folder_is_an_error(project):
    save_placeholder(project.distilbert_model, "distilbert", list(LABELS), "transformers off")
    with pytest.raises(ArtifactError, match=r"distilbert_model is a placeholder for model "
                       r"'distilbert' \(skipped: transformers off\), not a trained model"):
        resolve_model(str(project.distilbert_model), model_name=NAME, paths=project)
    with pytest.raises(ArtifactError, match="no model directory at .*/project/models/nowhere"):
        resolve_model("models/nowhere", model_name=NAME, paths=project)


@pytest.mark.parametrize("spec", ["models:/only-a-name", "models:/x/latest", "runs:/abc/model"])
def test_a_malformed_uri_names_the_accepted_forms(project, spec):
    with pytest.raises(ArtifactError, match=rf"cannot resolve the model '{spec}'; expected a "
                       r"model directory, models:/<name>@<alias> or models:/<name>/<version>"):
        resolve_model(spec, model_name=NAME, paths=project)


# --- the registry --------------------------------------------------------------------------


def test_alias_and_version_resolve_to_downloaded_folders(project_with_registry):
    paths = project_with_registry
    champion = resolve_model(f"models:/{NAME}@champion", model_name="ignored", paths=paths)
    first = resolve_model(f"models:/{NAME}/1", model_name="ignored", paths=paths)

    cache = paths.root / ".cache" / "registry" / NAME
    assert (champion.version, champion.name, champion.source) == (
        "2", NAME, f"models:/{NAME}@champion"
    )
    assert champion.path == cache / "2" / "model_dir" and champion.trusted
    assert (champion.alias, first.alias) == ("champion", None)
    assert variant_paths(champion) == {"onnx": cache / "2" / "onnx"}
    assert content_hash(champion.variants["onnx"].path) == content_hash(paths.resolve(ONNX))
    assert first.version == "1" and first.variants == {}
    # verified against its registration, yet --no-trust trusts only the project's models/
    no_trust = resolve_model(f"models:/{NAME}/1", model_name="ignored", paths=paths, trust=False)
    assert no_trust.path == first.path and no_trust.trusted is False
    assert not list(paths.root.joinpath(".cache").rglob("*.pkl"))
    assert not list(paths.root.joinpath(".cache").rglob("MLmodel"))  # only the model folders
    # version 2 is the project's current baseline folder: the same model, the same outputs
    np.testing.assert_allclose(
        predictions(champion.path, trust=champion.trusted, project=paths),
        predictions(paths.baseline_model, project=paths),
    )
    assert not np.allclose(
        predictions(first.path, trust=True), predictions(champion.path, trust=True)
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"models:/{NAME}@nope", f"models:/{NAME}@nope is not in the MLflow registry .*nope"),
        (f"models:/{NAME}/9", rf"models:/{NAME}/9 is not in the MLflow registry .*version=9"),
        ("models:/unknown@champion", "models:/unknown@champion is not in the MLflow registry"),
    ],
)
def test_an_unknown_alias_version_or_name_is_named(project_with_registry, spec, message):
    with pytest.raises(NotRegistered, match=message):
        resolve_model(spec, model_name=NAME, paths=project_with_registry)


def test_no_spec_is_the_registry_champion(project_with_registry):
    resolved = resolve_model(None, model_name=NAME, paths=project_with_registry)
    assert resolved.version == "2" and resolved.source == f"models:/{NAME}@champion"


def test_no_champion_alias_falls_back_to_best_model_with_a_warning(project_with_registry, caplog):
    paths = project_with_registry
    with caplog.at_level(logging.WARNING, logger=resolve.__name__):
        resolved = resolve_model(None, model_name="never-registered", paths=paths)

    assert resolved.path == paths.baseline_model and resolved.source == str(paths.best_model)
    assert variant_paths(resolved) == {"onnx": paths.resolve(ONNX)} and resolved.version is None
    assert "models:/never-registered@champion is not in the MLflow registry" in caplog.text


def test_a_second_resolution_uses_the_cache(project_with_registry, monkeypatch):
    paths = project_with_registry
    first = resolve_model(f"models:/{NAME}/2", model_name=NAME, paths=paths)

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded again")

    with monkeypatch.context() as patch:
        patch.setattr(cache, "download", no_download)
        again = resolve_model(f"models:/{NAME}@champion", model_name=NAME, paths=paths)
    assert again.path == first.path and again.variants == first.variants

    # a damaged cache entry fails its hash check and is downloaded afresh
    (first.path / "model.json").write_text("{}")
    repaired = resolve_model(f"models:/{NAME}/2", model_name=NAME, paths=paths)
    assert content_hash(repaired.path) == content_hash(paths.baseline_model)


def test_concurrent_resolutions_share_one_cache_entry(project_with_registry):
    """Serving workers start together: each resolves the champion; none breaks another's."""
    from concurrent.futures import ThreadPoolExecutor

    paths = project_with_registry
    with ThreadPoolExecutor(4) as pool:
        resolved = list(pool.map(
            lambda _: resolve_model(f"models:/{NAME}@champion", model_name=NAME, paths=paths),
            range(4),
        ))

    assert {r.path for r in resolved} == {resolved[0].path}
    assert content_hash(resolved[0].path) == content_hash(paths.baseline_model)
    assert sorted(p.name for p in resolved[0].path.parents[1].iterdir()) == ["2"]  # no leftovers
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_registry_artifacts_changed_after_registration_are_refused(
    project_with_registry, monkeypatch
):
    paths = project_with_registry
    registered = lookup.lookup(tracking.tracking_uri(paths), RegistrySpec(NAME, version="1"),
                               timeout_s=10)
    forged = lookup.RegisteredVersion(
        NAME, "1", registered.download_uri, {**registered.tags, "content_hash": "sha256:0"}
    )
    monkeypatch.setattr(resolve, "lookup", lambda *args, **kwargs: forged)
    with pytest.raises(ArtifactError, match=r"model_dir folder of models:/.*/1 has content hash "
                       r"sha256:\w+, but registration recorded sha256:0"):
        resolve_model(f"models:/{NAME}/1", model_name=NAME, paths=paths)
    assert not (paths.root / ".cache" / "registry" / NAME / "1").exists()


def mlflow_asked(monkeypatch) -> list[dict]:
    """Record every MLflow client made from now on (none should be, when a probe refuses)."""
    import mlflow.tracking

    asked: list[dict] = []
    monkeypatch.setattr(mlflow.tracking, "MlflowClient", lambda **kwargs: asked.append(kwargs))
    return asked


@pytest.mark.timeout(60)
def test_alias_version(project_with_registry, monkeypatch):
    paths = project_with_registry
    assert alias_version(NAME, paths=paths) == "2"
    assert alias_version(NAME, "previous", paths=paths) == "1"
    assert alias_version(NAME, "nope", paths=paths) is None
    assert alias_version("unknown", paths=paths) is None

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    asked = mlflow_asked(monkeypatch)
    assert alias_version(NAME, paths=paths) is None
    assert asked == []  # the probe refused the closed port: MLflow's retries never started


# --- an unreachable registry ---------------------------------------------------------------


@pytest.mark.timeout(60)  # MLflow's own retries of a refused connection take minutes
def test_unreachable_registry_falls_back_to_best_model_within_the_limit(
    project, closed_registry, caplog, monkeypatch
):
    save_tiny_model(project.baseline_model)
    write_champion(project)

    asked = mlflow_asked(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=resolve.__name__):
        resolved = resolve_model(None, model_name=NAME, paths=project)
    assert asked == []  # refused by the probe, before MLflow (which retries for minutes)

    assert resolved.path == project.baseline_model
    assert "the MLflow server http://127.0.0.1:" in caplog.text
    assert "cannot be reached (ConnectionRefusedError" in caplog.text
    with pytest.raises(RegistryUnavailable, match="cannot be reached"):
        resolve_model(f"models:/{NAME}@champion", model_name=NAME, paths=project)


def test_an_unknown_registry_scheme_falls_back(project, monkeypatch, caplog):
    save_tiny_model(project.baseline_model)
    write_champion(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://somewhere")
    get_settings.cache_clear()

    with caplog.at_level(logging.WARNING, logger=resolve.__name__):
        resolved = resolve_model(None, model_name=NAME, paths=project)

    assert resolved.path == project.baseline_model
    assert "nosuchscheme://somewhere is not an MLflow registry URI" in caplog.text
    get_settings.cache_clear()


@pytest.mark.timeout(60)
def test_a_registry_that_never_answers_is_given_up_after_timeout(project, monkeypatch):
    save_tiny_model(project.baseline_model)
    write_champion(project)
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{silent.getsockname()[1]}")
        get_settings.cache_clear()
        # The message names the limit that fired: not a refused connection, not MLflow's
        # retries (which the test's timeout would stop after a minute).
        with pytest.raises(RegistryUnavailable, match=r"did not answer within 1\.5 s"):
            resolve_model(f"models:/{NAME}/1", model_name=NAME, paths=project, timeout_s=1.5)
        resolved = resolve_model(None, model_name=NAME, paths=project, timeout_s=1.5)
    assert resolved.path == project.baseline_model
    get_settings.cache_clear()


def test_without_a_local_store_the_fallback_creates_none(project, caplog):
    project.mlflow_db.unlink()
    save_tiny_model(project.baseline_model)
    write_champion(project)

    with caplog.at_level(logging.WARNING, logger=resolve.__name__):
        resolved = resolve_model(None, model_name=NAME, paths=project)

    assert resolved.path == project.baseline_model
    assert f"no MLflow store at {project.mlflow_db}" in caplog.text
    assert not project.mlflow_db.exists()


def test_nothing_to_resolve_names_every_candidate(project, closed_registry):
    with pytest.raises(ArtifactError, match=rf"no model to use: tried models:/{NAME}@champion "
                       r"\(the MLflow server .* cannot be reached .*\) and .*best_model.json "
                       r"\(no .*best_model.json; run the model_evaluation stage first\)"):
        resolve_model(None, model_name=NAME, paths=project)
