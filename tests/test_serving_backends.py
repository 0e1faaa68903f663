"""Backend choice (auto, torch, onnx, onnx-int8), the registry provider, and hot reloads."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    ModelManifest,
    write_manifest,
)
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import opening, resolve
from sentiment_pipeline.registry.opening import load
from sentiment_pipeline.registry.resolve import ResolvedModel
from sentiment_pipeline.registry.specs import RegistrySpec, parse_spec
from sentiment_pipeline.serving import provider as providers
from sentiment_pipeline.serving.provider import RegistryProvider
from serving_fakes import (
    FakeModel,
    FakeProvider,
    app_for,
    folder_provider,
    loaded,
    resolved_folder,
)

LABELS = ["negative", "neutral", "positive"]


def folder(root: Path, name: str, kind: str, precision: str | None = None) -> Path:
    target = root / name
    target.mkdir()
    extra = {"reason": "skipped", "status": "skipped"} if kind == "placeholder" else {}
    write_manifest(target, ModelManifest(name=name, kind=kind, labels=LABELS,
                                         precision=precision, **extra))
    return target


def resolved(path: Path, **variants: Path) -> ResolvedModel:
    return resolved_folder(path, name="m",
                           variants={k.replace("_", "-"): v for k, v in variants.items()})


def backend_choices(model: ResolvedModel, requested: str) -> list[tuple[str, Path]]:
    """opening.backend_choices with the folders' paths."""
    return [(name, folder.path) for name, folder in opening.backend_choices(model, requested)]


def test_auto_prefers_int8_then_fp32_onnx_then_torch(tmp_path: Path) -> None:
    torch_dir = folder(tmp_path, "t", "transformers")
    onnx_dir = folder(tmp_path, "o", "onnx", "fp32")
    int8_dir = folder(tmp_path, "q", "onnx", "int8")
    model = resolved(torch_dir, onnx=onnx_dir, onnx_int8=int8_dir)

    assert backend_choices(model, "auto") == [
        ("onnx-int8", int8_dir), ("onnx", onnx_dir), ("torch", torch_dir)
    ]
    assert backend_choices(model, "torch") == [("torch", torch_dir)]
    assert backend_choices(model, "onnx") == [("onnx", onnx_dir)]
    assert backend_choices(resolved(torch_dir), "auto") == [("torch", torch_dir)]


def test_an_onnx_primary_folder_serves_as_its_precision(tmp_path: Path) -> None:
    int8_dir = folder(tmp_path, "q", "onnx", "int8")

    assert backend_choices(resolved(int8_dir), "auto") == [("onnx-int8", int8_dir)]
    with pytest.raises(ArtifactError, match=r"no torch model \(it has \['onnx-int8'\]\)"):
        backend_choices(resolved(int8_dir), "torch")


def test_a_requested_backend_the_model_lacks_is_a_clear_error(tmp_path: Path) -> None:
    torch_dir = folder(tmp_path, "t", "transformers")

    with pytest.raises(ArtifactError, match=r"serve.backend is 'onnx-int8', but .* has no "
                       r"onnx-int8 model .*export onnx --quantize int8"):
        backend_choices(resolved(torch_dir), "onnx-int8")
    with pytest.raises(ArtifactError, match="expected one of"):
        backend_choices(resolved(torch_dir), "tensorrt")


def test_scikit_learn_ignores_the_backend_and_placeholders_are_refused(tmp_path: Path) -> None:
    sk = folder(tmp_path, "s", "sklearn")
    placeholder = folder(tmp_path, "p", "placeholder")

    assert backend_choices(resolved(sk), "onnx-int8") == [("sklearn", sk)]
    with pytest.raises(ArtifactError, match="placeholder"):
        backend_choices(resolved(placeholder), "auto")


def test_auto_falls_back_past_a_variant_that_cannot_load(tiny_transformer_model, tmp_path,
                                                        caplog) -> None:
    broken = folder(tmp_path, "q", "onnx", "int8")  # a manifest without a graph
    model = resolved_folder(tiny_transformer_model, name="m", source="x",
                            variants={"onnx-int8": broken})

    with caplog.at_level(logging.WARNING):
        served = load(model, "auto", threads=1, project=None)

    assert (served.backend, served.path) == ("torch", tiny_transformer_model)
    assert "trying the next backend" in caplog.text
    with pytest.raises(ArtifactError):
        load(model, "onnx-int8", threads=1, project=None)


def test_the_registry_alias_is_what_gets_polled(tmp_path: Path) -> None:
    assert parse_spec("models:/sentiment@champion") == RegistrySpec("sentiment", "champion")
    assert parse_spec("models:/sentiment/4") == RegistrySpec("sentiment", version="4")
    assert parse_spec("/models/baseline") is None

    def provider(alias: str | None) -> RegistryProvider:
        model = resolved_folder(folder(tmp_path, f"m-{alias}", "sklearn"), version="4",
                                alias=alias)
        return RegistryProvider(resolved=model, backend="auto", model_name="m",
                                paths=ProjectPaths.at(tmp_path))

    assert provider("champion").reloadable()
    assert not provider(None).reloadable()  # a pinned version or a folder


def test_the_provider_loads_a_new_version_when_the_alias_moves(tmp_path, monkeypatch) -> None:
    from tiny_sklearn import save_tiny_model

    save_tiny_model(tmp_path / "v1")
    save_tiny_model(tmp_path / "v2", C=0.5)
    first = resolved_folder(tmp_path / "v1", trusted=True, source="models:/sentiment@champion",
                            version="1", alias="champion")
    second = resolved_folder(tmp_path / "v2", trusted=True, source="models:/sentiment@champion",
                             version="2", alias="champion")
    versions = iter(["1", None, "2"])
    asked: list[tuple] = []
    monkeypatch.setattr(providers, "alias_version",
                        lambda name, alias, **kw: asked.append((name, alias)) or next(versions))
    monkeypatch.setattr(resolve, "resolve_model", lambda spec, **kw: second)
    provider = RegistryProvider(resolved=first, backend="auto", model_name="sentiment",
                                paths=ProjectPaths.at(tmp_path))

    current = provider.load()

    assert provider.reloadable()
    assert provider.poll(current) is None  # same version
    assert provider.poll(current) is None  # registry not there: keep serving
    new = provider.poll(current)
    assert new is not None and new.resolved.version == "2" and new.path == tmp_path / "v2"
    assert asked == [("sentiment", "champion")] * 3


# --- reloads in the running service ----------------------------------------------------------


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_new_champion_is_swapped_in_while_the_old_one_serves() -> None:
    provider = FakeProvider(FakeModel(name="v1"), version="1")
    app = app_for(provider, reload_interval_s=0.05, max_wait_ms=0)
    with TestClient(app) as client:
        assert client.get("/info").json()["model_version"] == "1"
        provider.next = loaded(FakeModel(name="v2"), "2")

        seen = set()

        def swapped() -> bool:
            assert client.get("/health").status_code == 200
            assert client.post("/predict", json={"inputs": "x"}).status_code == 200
            seen.add(client.get("/info").json()["model_version"])
            return "2" in seen

        wait_for(swapped)
        metrics = client.get("/metrics").text

    assert 'te_model_info{backend="sklearn",kind="sklearn",name="sentiment",version="2"} 1.0' \
        in metrics
    assert 'te_model_info{backend="sklearn",kind="sklearn",name="sentiment",version="1"} 0.0' \
        in metrics
    assert 'te_model_reload_total{result="success"} 1.0' in metrics


def test_a_failed_reload_keeps_the_old_model(caplog) -> None:
    provider = FakeProvider(FakeModel(name="v1"), version="1",
                            poll_error=ArtifactError("the registry is down"))
    app = app_for(provider, reload_interval_s=3600)
    with TestClient(app) as client, caplog.at_level(logging.ERROR):
        service = app.state.service
        assert client.portal.call(service.reload) is False
        provider.poll_error = None
        provider.next = loaded(FakeModel(name="v2", labels=["bad", "good"]), "2")
        assert client.portal.call(service.reload) is False
        provider.next = loaded(FakeModel(name="v3", nan=True), "3")
        assert client.portal.call(service.reload) is False
        assert client.get("/info").json()["model_version"] == "1"
        assert client.get("/health").status_code == 200
        metrics = client.get("/metrics").text

    assert "the registry is down" in caplog.text and "still serving" in caplog.text
    assert "restart the server to change the label set" in caplog.text
    assert "warm-up" in caplog.text
    assert 'te_model_reload_total{result="failure"} 3.0' in metrics


def test_a_folder_or_a_pinned_version_is_never_polled() -> None:
    provider = FakeProvider(FakeModel())  # no version: a folder
    with TestClient(app_for(provider, reload_interval_s=0.01)):
        time.sleep(0.1)

    assert provider.polls == []


# --- ONNX Runtime end to end -------------------------------------------------------------------


def test_onnx_backends_serve_what_torch_serves(exported) -> None:
    source, fp32, int8 = exported
    model = resolved_folder(source, name="m", variants={"onnx": fp32, "onnx-int8": int8})
    texts = [["a short one"], ["a somewhat longer text about a delayed flight"]]
    answers = {}
    for backend in ("auto", "torch", "onnx", "onnx-int8"):
        provider = RegistryProvider(resolved=model, backend=backend, model_name="m",
                                    paths=ProjectPaths.at(source.parent), threads=1)
        with TestClient(app_for(provider, max_wait_ms=0)) as client:
            answers[backend] = client.post("/predict", json={"inputs": texts,
                                                              "raw_scores": True}).json()
            answers[backend, "info"] = client.get("/info").json()

    assert answers["auto", "info"]["backend"] == "onnx-int8"
    assert answers["auto", "info"]["model_path"] == str(int8)
    assert answers["onnx", "info"]["kind"] == "onnx"
    for backend, tolerance in (("onnx", 1e-3), ("onnx-int8", 0.1)):
        for got, want in zip(answers[backend], answers["torch"], strict=True):
            assert {p["label"]: p["score"] for p in got} == pytest.approx(
                {p["label"]: p["score"] for p in want}, abs=tolerance)


def test_serving_a_directory_of_kind_onnx(exported) -> None:
    _, fp32, _ = exported
    with TestClient(app_for(folder_provider(fp32))) as client:
        info = client.get("/info").json()
        response = client.post("/predict", json={"inputs": "fine"})

    assert (info["kind"], info["backend"]) == ("onnx", "onnx")
    assert response.status_code == 200 and len(response.json()) == 3
