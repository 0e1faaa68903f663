"""Pair (aspect) models served: pairs on /predict and /invocations, the aspect model beside the
primary one (from the registry, reloaded when its alias moves), /info listing both."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sentiment_pipeline.config.register import RegisterConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.evaluation.best_model import BestModel
from sentiment_pipeline.io import write_json
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import (
    ArtifactError,
    read_manifest,
    write_manifest,
)
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import register_model
from sentiment_pipeline.registry.opening import NO_ASPECT_MODEL, open_aspect_model
from sentiment_pipeline.serving.app import create_app
from sentiment_pipeline.serving.server import Launch
from sentiment_pipeline.settings import get_settings
from server_process import call, serving
from serving_fakes import FakeModel, FakeProvider, app_for, folder_provider, loaded
from test_serving import mlflow_error, tei_error
from tiny_sklearn import save_tiny_model

PAIRS = [
    ["great video but the audio is terrible", "audio"],
    ["great video but the audio is terrible", "video"],
    ["the battery life is fine", "battery life"],
]
ASPECTS = "aspect-classifier"


def proba_of(folder: Path, pairs) -> np.ndarray:
    return load_model(folder, trust=True).predict_proba([tuple(p) for p in pairs])


def as_dicts(answer: list[dict]) -> dict[str, float]:
    return {p["label"]: p["score"] for p in answer}


@pytest.fixture(scope="module")
def pair_client(tiny_pair_model: Path):
    """The tiny pair model served from its folder (small limits)."""
    app = app_for(folder_provider(tiny_pair_model), max_texts_per_request=4, max_text_chars=40,
                  max_wait_ms=0)
    with TestClient(app) as started:
        yield started


@pytest.fixture(scope="module")
def text_client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs") / "baseline"
    save_tiny_model(folder)
    with TestClient(app_for(folder_provider(folder), max_wait_ms=0)) as started:
        yield started


# --- /predict -------------------------------------------------------------------------------


def test_predict_takes_pairs_as_tei_does_for_pair_classifiers(pair_client, tiny_pair_model):
    batch = pair_client.post("/predict", json={"inputs": PAIRS})

    assert batch.status_code == 200, batch.text
    answers = batch.json()
    expected = proba_of(tiny_pair_model, PAIRS)
    for answer, row in zip(answers, expected, strict=True):
        scores = [p["score"] for p in answer]
        assert scores == sorted(scores, reverse=True)
        assert as_dicts(answer) == pytest.approx(dict(zip(["negative", "neutral", "positive"],
                                                          row, strict=True)), abs=1e-5)
    # The same text about two aspects: two inputs, two answers.
    assert as_dicts(answers[0]) != pytest.approx(as_dicts(answers[1]), abs=1e-7)
    # One pair alone answers one list of {label, score}, as its place in a batch does.
    single = pair_client.post("/predict", json={"inputs": PAIRS[0]}).json()
    assert as_dicts(single) == pytest.approx(as_dicts(answers[0]), abs=1e-5)


def test_a_pair_model_refuses_single_texts(pair_client):
    tei_error(pair_client.post("/predict", json={"inputs": "the audio is bad"}), 422,
              "validation", "`inputs` is a single text", "(text, aspect) pairs",
              '["text", "aspect"]')
    tei_error(pair_client.post("/predict", json={"inputs": [["t1"], ["t2"]]}), 422,
              "validation", "inputs[0] is a list of 1 strings", "(text, aspect) pairs")
    tei_error(pair_client.post("/predict", json={"inputs": ["a", "b", "c"]}), 422,
              "validation", "a flat list of 3 strings", "(text, aspect) pairs")
    tei_error(pair_client.post("/predict", json={"inputs": []}), 400, "empty",
              '[["t1", "aspect1"]')


def test_a_text_model_still_refuses_pairs(text_client):
    tei_error(text_client.post("/predict", json={"inputs": PAIRS[0]}), 422, "validation",
              "`inputs` is a text pair", "classifies single texts")
    tei_error(text_client.post("/predict", json={"inputs": PAIRS}), 422, "validation",
              "inputs[0] is a text pair", "classifies single texts")


def test_the_limits_apply_to_pairs_and_to_each_part(pair_client):
    tei_error(pair_client.post("/predict", json={"inputs": [PAIRS[0]] * 5}), 413, "validation",
              "holds 5 pairs", "serve.max_texts_per_request = 4")
    long_aspect = [PAIRS[0][0][:30], "a" * 41]
    tei_error(pair_client.post("/predict", json={"inputs": [PAIRS[2], long_aspect]}), 413,
              "validation", "inputs[1][1] has 41 characters", "serve.max_text_chars = 40")
    tei_error(pair_client.post("/predict", json={"inputs": ["x" * 41, "audio"]}), 413,
              "validation", "inputs[0] has 41 characters", "serve.max_text_chars = 40")
    cut = pair_client.post("/predict", json={"inputs": [long_aspect], "truncate": True})
    assert cut.status_code == 200 and len(cut.json()) == 1


def test_pair_requests_are_batched_and_counted(pair_client):
    before = pair_client.get("/metrics").text
    assert pair_client.post("/predict", json={"inputs": PAIRS}).status_code == 200
    text = pair_client.get("/metrics").text
    assert text.count('te_request_count_total{route="/predict",status="200"}') == 1
    assert text != before
    assert "te_batch_next_tokens_count" in text and "te_queue_size 0.0" in text


# --- /invocations ---------------------------------------------------------------------------


def test_invocations_take_text_and_aspect_columns(pair_client, tiny_pair_model):
    expected = proba_of(tiny_pair_model, PAIRS)
    bodies = [
        {"dataframe_split": {"columns": ["text", "aspect"], "data": PAIRS}},
        {"dataframe_split": {"columns": ["id", "aspect", "text"],
                             "data": [[i, a, t] for i, (t, a) in enumerate(PAIRS)]}},
        {"dataframe_records": [{"text": t, "aspect": a} for t, a in PAIRS]},
        {"instances": PAIRS},
        {"inputs": {"text": [t for t, _ in PAIRS], "aspect": [a for _, a in PAIRS]}},
    ]
    csv = "text,aspect\n" + "".join(f'"{t}","{a}"\n' for t, a in PAIRS)
    answers = [pair_client.post("/invocations", json=body) for body in bodies]
    answers.append(pair_client.post("/invocations", content=csv,
                                    headers={"content-type": "text/csv"}))
    for response in answers:
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        got = np.array([[p["p_negative"], p["p_neutral"], p["p_positive"]]
                        for p in predictions])
        assert np.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"dataframe_split": {"columns": ["text"], "data": [["x"]]}}, "no column 'aspect'"),
        ({"dataframe_records": [{"text": "x"}]}, "send the columns ['text', 'aspect']"),
        ({"instances": ["just a text"]}, "instances[0] must be a [text, aspect] pair"),
        ({"inputs": [{"text": "x", "aspect": None}]}, "row 0: the aspect is null"),
        ({"inputs": {"text": ["x", "y"], "aspect": ["x"]}}, "lists of the same length"),
    ],
)
def test_invocations_refuse_what_is_not_a_pair(pair_client, body, fragment):
    mlflow_error(pair_client.post("/invocations", json=body), 400, fragment)


def test_invocations_limits_count_pairs(pair_client):
    body = {"instances": [PAIRS[0]] * 5}
    mlflow_error(pair_client.post("/invocations", json=body), 413, "holds 5 pairs")


# --- /info and the OpenAPI document ---------------------------------------------------------


def test_info_lists_the_model_and_its_input(pair_client):
    info = pair_client.get("/info").json()

    assert {"model_name", "model_version", "kind", "backend", "labels", "limits",
            "batching", "metrics", "loaded_at"} <= set(info)
    (model,) = info["models"]
    assert model["role"] == "primary" and model["input"] == "pair"
    assert (model["name"], model["version"], model["alias"]) == ("sentiment", None, None)
    assert model["backend"] == "torch" and model["kind"] == "transformers"
    schema = pair_client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("InfoResponse", "LoadedInfo"):
        assert all(spec.get("description") for spec in schema[name]["properties"].values()
                   if "$ref" not in spec and "allOf" not in spec), name
    one = schema["PredictRequest"]["properties"]["inputs"]["anyOf"][0]
    assert (one["minItems"], one["maxItems"]) == (2, 2)  # the documented input is a pair


# --- the aspect model beside the primary ----------------------------------------------------


def pair_fake(name: str = "aspects") -> FakeModel:
    model = FakeModel(name=name)
    model.manifest = model.manifest.model_copy(update={"input": "pair"})
    return model


def test_the_aspect_model_serves_beside_the_primary(tiny_pair_model):
    primary = FakeModel()
    app = create_app(ServeConfig(max_wait_ms=0), FakeProvider(primary),
                     aspect_provider=folder_provider(tiny_pair_model))
    with TestClient(app) as client:
        aspect = app.state.aspect_model
        # predict_proba takes pairs, batched by the aspect model's own service.
        proba = aspect.predict_proba([tuple(p) for p in PAIRS])
        assert np.allclose(proba, proba_of(tiny_pair_model, PAIRS), atol=1e-5)
        assert aspect.manifest.input == "pair" and aspect.labels == primary.labels
        assert aspect.loaded.resolved.path == tiny_pair_model
        with pytest.raises(RuntimeError, match="not on the event loop"):
            client.portal.call(aspect.predict_proba, [tuple(PAIRS[0])])
        # /predict still serves the primary model, on texts.
        assert client.post("/predict", json={"inputs": "great crew"}).status_code == 200
        assert primary.calls[-1] == ["great crew"]
        info = client.get("/info").json()
        metrics = client.get("/metrics").text
    assert [(m["role"], m["input"]) for m in info["models"]] == [("primary", "text"),
                                                                 ("aspect", "pair")]
    assert info["model_name"] == "sentiment"  # the top-level keys describe the primary
    for backend, kind in (("sklearn", "sklearn"), ("torch", "transformers")):
        assert f'te_model_info{{backend="{backend}",kind="{kind}",name="sentiment",version=""}} ' \
            "1.0" in metrics


def test_the_served_aspect_model_answers_the_analysis_of_aspects(tiny_pair_model):
    # The insights route scores the mentions with the ServedModel the service put on the state
    # (batched like /predict, off the event loop), not with a fake.
    app = create_app(ServeConfig(max_wait_ms=0), FakeProvider(FakeModel()),
                     aspect_provider=folder_provider(tiny_pair_model))
    comments = [{"text": "great video but the audio is terrible"},
                {"text": "the sound was fine, the video too"}, {"text": "nothing to say"}]
    with TestClient(app) as client:
        answer = client.post("/v1/analyze", json={
            "comments": comments, "aspects": [{"name": "audio", "terms": ["sound"]}],
            "discover_aspects": 1,
        })
        batches = client.get("/metrics").text
    assert answer.status_code == 200, answer.text
    audio = answer.json()["aspects"][0]
    assert audio["name"] == "audio" and audio["count"] == 2
    assert sum(row["count"] for row in audio["breakdown"]) == 2
    # Each mention's answer is the tiny pair model's for (comment, the term as it occurs).
    asked = [(comments[m["index"]]["text"], m["term"]) for m in audio["mentions"]]
    assert [t for _, t in asked] == ["audio", "sound"]
    expected = proba_of(tiny_pair_model, asked)
    labels = load_model(tiny_pair_model).labels
    assert [m["label"] for m in audio["mentions"]] == [labels[i] for i in expected.argmax(1)]
    assert 'te_model_info{backend="torch",kind="transformers"' in batches


def test_without_an_aspect_model_the_state_says_none():
    with TestClient(app_for(FakeProvider(FakeModel()))) as client:
        assert client.app.state.aspect_model is None
        assert [m["role"] for m in client.get("/info").json()["models"]] == ["primary"]


def test_a_reload_keeps_the_input_kind(caplog):
    provider = FakeProvider(pair_fake(), version="1")
    app = app_for(provider, reload_interval_s=3600)
    with TestClient(app) as client:
        service = app.state.service
        provider.next = loaded(FakeModel(), "2")  # takes single texts
        with caplog.at_level(logging.ERROR):
            assert client.portal.call(service.reload) is False
        assert service.current.resolved.version == "1"
        provider.next = loaded(pair_fake(), "3")
        assert client.portal.call(service.reload) is True
    assert "takes input 'text', the served one 'pair'" in caplog.text


# --- from the registry ----------------------------------------------------------------------


def register_pair_model(paths: ProjectPaths, source: Path, max_length: int) -> str:
    """`source` (with its max_length changed, so each version differs) registered as ASPECTS;
    its version (the champion now)."""
    folder = paths.models_dir / "aspects" / "aspect_model"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    manifest = read_manifest(folder)
    write_manifest(folder, manifest.model_copy(
        update={"params": {**manifest.params, "max_length": max_length}}))
    best = BestModel(name="aspects", path=folder.relative_to(paths.root).as_posix(),
                     kind="transformers", primary_metric="macro_f1", score=0.9,
                     metrics={"macro_f1": 0.9}, mlflow_run_id=None, evaluation_run_id=None,
                     evaluated=["aspects"], skipped={})
    write_json(paths.best_model, best.model_dump(mode="json"))
    result = register_model.run(RegisterConfig(model_name=ASPECTS, min_score=0.5), paths)
    assert result.registered, result
    return result.version


@pytest.fixture
def registry_project(tmp_path, monkeypatch, mlflow_db_template) -> ProjectPaths:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(mlflow_db_template, root / "mlruns.db")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield ProjectPaths.at(root)
    get_settings.cache_clear()


def test_the_aspect_champion_is_served_and_follows_its_alias(registry_project, tiny_pair_model):
    paths = registry_project
    tiny = paths.models_dir / "tiny"
    save_tiny_model(tiny)
    # Nothing registered: no aspect model, and serve starts as before.
    assert open_aspect_model(None, model_name=ASPECTS, paths=paths) is None
    assert register_pair_model(paths, tiny_pair_model, 40) == "1"
    assert open_aspect_model(NO_ASPECT_MODEL, model_name=ASPECTS, paths=paths) is None
    opened = open_aspect_model(None, model_name=ASPECTS, paths=paths, backend="auto", threads=1)
    assert (opened.resolved.version, opened.resolved.alias) == ("1", "champion")
    primary = load_model(tiny, trust=True)
    launch = Launch.of(
        folder_provider(tiny).resolved, ServeConfig(max_wait_ms=0, reload_interval_s=3600),
        model_name="sentiment", paths=paths, threads=1, aspect=opened.resolved,
        aspect_model_name=ASPECTS,
    )
    launch = Launch.model_validate_json(launch.model_dump_json())  # as a worker gets it
    app = create_app(launch.serve, launch.provider(), aspect_provider=launch.aspect_provider())
    with TestClient(app) as client:
        aspects = client.get("/info").json()["models"][1]
        assert (aspects["name"], aspects["version"], aspects["alias"]) == (ASPECTS, "1",
                                                                            "champion")
        assert client.portal.call(app.state.aspect_service.reload) is False  # not moved
        assert register_pair_model(paths, tiny_pair_model, 32) == "2"
        assert client.portal.call(app.state.aspect_service.reload) is True
        aspects = client.get("/info").json()["models"][1]
        assert (aspects["version"], aspects["input"]) == ("2", "pair")
        assert app.state.aspect_model.loaded.resolved.version == "2"
        assert len(app.state.aspect_model.predict_proba([tuple(PAIRS[0])])) == 1
        answer = client.post("/predict", json={"inputs": "great crew"}).json()
    assert as_dicts(answer) == pytest.approx(dict(zip(
        primary.labels, primary.predict_proba(["great crew"])[0], strict=True)))


def test_a_model_of_single_texts_is_no_aspect_model(tmp_path):
    save_tiny_model(tmp_path / "baseline")
    with pytest.raises(ArtifactError, match="takes single texts .*input 'pair'.*'none'"):
        open_aspect_model(str(tmp_path / "baseline"), model_name=ASPECTS,
                          paths=ProjectPaths.at(tmp_path), trust=True)


# --- other runtimes and a real server -------------------------------------------------------


@pytest.mark.slow
def test_an_onnx_pair_model_serves_what_torch_serves(tiny_pair_model, tmp_path):
    for name in ("onnxruntime", "onnxscript"):
        pytest.importorskip(name)
    from sentiment_pipeline.config.export import OnnxExportConfig
    from sentiment_pipeline.models.conversion.onnx_export import export_transformers

    source = tmp_path / "aspect_model"
    shutil.copytree(tiny_pair_model, source)
    export_transformers(source, tmp_path / "fp32", OnnxExportConfig())
    with TestClient(app_for(folder_provider(tmp_path / "fp32"), max_wait_ms=0)) as client:
        answers = client.post("/predict", json={"inputs": PAIRS}).json()
        info = client.get("/info").json()
    assert (info["backend"], info["models"][0]["input"]) == ("onnx", "pair")
    got = np.array([[as_dicts(a)[label] for label in ("negative", "neutral", "positive")]
                    for a in answers])
    assert np.abs(got - proba_of(source, PAIRS)).max() < 1e-4


@pytest.mark.slow
def test_a_real_server_serves_a_pair_model_and_an_aspect_model(project, tiny_pair_model):
    folder = project.models_dir / "aspects" / "aspect_model"
    shutil.copytree(tiny_pair_model, folder)
    args = ["--model", str(folder), "--set", f"serve.aspect_model={folder}",
            "--set", "serve.reload_interval_s=0"]
    with serving(args, cwd=project.root) as served:
        status, body = call(served.port, "/predict", {"inputs": PAIRS})
        info = json.loads(call(served.port, "/info")[1])
    assert status == 200 and len(json.loads(body)) == len(PAIRS)
    assert [(m["role"], m["input"]) for m in info["models"]] == [("primary", "pair"),
                                                                 ("aspect", "pair")]
