"""The service through the ASGI client: every endpoint and every 4xx path."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import ArtifactError
from serving_fakes import FakeModel, FakeProvider, app_for, folder_provider, serve_async, until
from tiny_sklearn import save_tiny_model


@pytest.fixture(scope="session")
def sklearn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serving") / "baseline"
    save_tiny_model(folder)
    return folder


@pytest.fixture(scope="session")
def client(sklearn_dir: Path):
    """One started app for the read-only tests (the tiny sklearn model, small limits)."""
    app = app_for(folder_provider(sklearn_dir), max_texts_per_request=4, max_text_chars=40,
                  max_body_bytes=8192, max_wait_ms=0)
    with TestClient(app) as started:
        yield started


def tei_error(response: httpx.Response, status: int, error_type: str, *fragments: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type
    for fragment in fragments:
        assert fragment in body["error"]
    return body["error"]


def mlflow_error(response: httpx.Response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == ("REQUEST_LIMIT_EXCEEDED" if status == 429 else "BAD_REQUEST")
    for fragment in fragments:
        assert fragment in body["message"]
    return body["message"]


# --- /predict ------------------------------------------------------------------------------


def test_predict_one_text_gives_every_class_highest_first(client, sklearn_dir) -> None:
    response = client.post("/predict", json={"inputs": "thanks, great crew"})

    assert response.status_code == 200
    body = response.json()
    assert [set(p) for p in body] == [{"label", "score"}] * 3
    scores = [p["score"] for p in body]
    assert scores == sorted(scores, reverse=True) and math.isclose(sum(scores), 1.0)
    model = load_model(sklearn_dir, trust=True)
    expected = dict(zip(model.labels, model.predict_proba(["thanks, great crew"])[0], strict=True))
    assert {p["label"]: p["score"] for p in body} == pytest.approx(expected)
    for header in ("x-queue-time", "x-inference-time", "x-total-time"):
        assert float(response.headers[header]) >= 0


def test_predict_a_batch_answers_each_text_in_order(client) -> None:
    texts = ["delayed again", "great crew", "lost my bag"]

    batch = client.post("/predict", json={"inputs": [[t] for t in texts]}).json()

    assert batch == [client.post("/predict", json={"inputs": t}).json() for t in texts]


def test_raw_scores_are_the_logits_behind_the_probabilities(client) -> None:
    raw = client.post("/predict", json={"inputs": "ok", "raw_scores": True}).json()
    proba = client.post("/predict", json={"inputs": "ok"}).json()

    logits = np.array([p["score"] for p in raw])
    assert [p["label"] for p in raw] == [p["label"] for p in proba]
    assert np.exp(logits) / np.exp(logits).sum() == pytest.approx([p["score"] for p in proba])


def test_a_text_over_the_character_limit_is_cut_with_truncate_else_413(client) -> None:
    long = "great " * 20

    refused = client.post("/predict", json={"inputs": [["ok"], [long]]})
    cut = client.post("/predict", json={"inputs": [["ok"], [long]], "truncate": True})

    tei_error(refused, 413, "validation", "inputs[1]", "120 characters",
              "serve.max_text_chars = 40", "truncate")
    assert cut.status_code == 200
    assert cut.json()[1] == client.post("/predict", json={"inputs": long[:40]}).json()


def test_too_many_texts_is_413_naming_the_limit(client) -> None:
    response = client.post("/predict", json={"inputs": [["a"]] * 5})

    tei_error(response, 413, "validation", "5 texts", "serve.max_texts_per_request = 4")


@pytest.mark.parametrize(
    ("inputs", "where"),
    [(["a", "b"], "`inputs` is a text pair"), ([["a"], ["b", "c"]], "inputs[1] is a text pair"),
     (["a", "b", "c"], "flat list of 3"), ([["a"], []], "inputs[1] is a list of 0")],
)
def test_a_text_pair_is_422_showing_the_batch_form(client, inputs, where) -> None:
    response = client.post("/predict", json={"inputs": inputs})

    tei_error(response, 422, "validation", where, "classifies single texts",
              '"inputs": [["t1"], ["t2"]]')


def test_an_empty_batch_is_400_empty(client) -> None:
    tei_error(client.post("/predict", json={"inputs": []}), 400, "empty", "cannot be empty")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"inputs": "caf\xe9"}', "not valid UTF-8"),
        (b"[" * 3000 + b"]" * 3000, "nested too deeply"),
        (b'{"inputs": 12}', "inputs"),
        (b'{"inputs": null}', "inputs"),
        (b'{"inputs": "x", "raw_scores": "maybe"}', "raw_scores"),
        (b'{"inputs": 1e999999}', "inputs"),
        (b'{"inputs": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"inputs": ' + b"9" * 400 + b"}", "inputs"),
        (b'{"text": "no inputs"}', "inputs: Field required"),
        (b'"just a string"', "invalid request"),
        (b"", "not valid JSON"),
    ],
)
def test_malformed_requests_are_422_never_5xx(client, body, fragment) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})

    tei_error(response, 422, "validation", fragment)


def test_a_body_over_the_byte_limit_is_413_before_parsing(client) -> None:
    big = json.dumps({"inputs": "x" * 9000}).encode()

    declared = client.post("/predict", content=big, headers={"content-type": "application/json"})
    streamed = client.post("/predict", content=iter([big[:1000], big[1000:]]))

    tei_error(declared, 413, "validation", "serve.max_body_bytes = 8192")
    tei_error(streamed, 413, "validation", "serve.max_body_bytes = 8192")
    assert "content-length" not in streamed.request.headers


def test_unknown_unknown_keys_are_ignored_as_in_tei(client) -> None:
    response = client.post("/predict", json={"inputs": "ok", "truncation_direction": "Right"})

    assert response.status_code == 200


# --- /invocations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["text"], "data": [["great crew"], ["lost my bag"]]}},
        {"dataframe_split": {"columns": ["id", "text"], "data": [[1, "great crew"],
                                                                 [2, "lost my bag"]]}},
        {"dataframe_records": [{"text": "great crew"}, {"text": "lost my bag"}]},
        {"instances": ["great crew", "lost my bag"]},
        {"instances": [{"text": "great crew", "id": 1}, {"text": "lost my bag", "id": 2}]},
        {"inputs": {"text": ["great crew", "lost my bag"]}},
        {"inputs": ["great crew", "lost my bag"], "params": {"truncate": True}},
    ],
)
def test_invocations_takes_every_mlflow_json_format(client, body) -> None:
    response = client.post("/invocations", json=body)

    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    for text, prediction in zip(["great crew", "lost my bag"], predictions, strict=True):
        tei = client.post("/predict", json={"inputs": text}).json()
        assert prediction["label"] == tei[0]["label"]
        assert prediction["score"] == pytest.approx(tei[0]["score"])
        assert {f"p_{p['label']}": pytest.approx(p["score"]) for p in tei} == {
            k: v for k, v in prediction.items() if k.startswith("p_")
        }
    assert float(response.headers["x-total-time"]) >= 0


def test_invocations_takes_csv(client) -> None:
    response = client.post("/invocations", content="id,text\n1,great crew\n2,\"a, b\"\n",
                           headers={"content-type": "text/csv; charset=utf-8"})

    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"columns": ["text"], "data": [["x"]]}, "exactly one of the fields"),
        ({"instances": ["x"], "inputs": ["y"]}, "exactly one of the fields"),
        ([{"text": "x"}], "received a list"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [["x", "y"]]}}, "no column 'text'"),
        ({"dataframe_split": {"columns": ["text"], "data": [["x", "y"]]}}, "data[0]"),
        ({"dataframe_split": {"columns": "text", "data": [["x"]]}}, "columns"),
        ({"dataframe_split": ["x"]}, "dataframe_split must be"),
        ({"dataframe_records": [{"text": "x"}, "y"]}, "dataframe_records[1]"),
        ({"dataframe_records": {"text": "x"}}, "list of records"),
        ({"instances": ["x", None]}, "row 1: the text is null"),
        ({"instances": ["x", 3]}, "row 1: expected a text"),
        ({"instances": "x"}, "instances must be"),
        ({"inputs": {"text": "x"}}, "to a list of texts"),
        ({"inputs": []}, "no rows"),
        ({"inputs": ["x"], "params": {"truncate": "no"}}, "params.truncate"),
        ({"inputs": ["x"], "params": [1]}, "params must be"),
    ],
)
def test_invocations_refuses_malformed_input_with_mlflow_errors(client, body, fragment) -> None:
    mlflow_error(client.post("/invocations", json=body), 400, fragment)


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b"{nope", "application/json", 400, "not valid JSON"),
        (b"\xff\xfe", "application/json", 400, "not valid UTF-8"),
        (b"text\n\xff\n", "text/csv", 400, "not valid UTF-8"),
        (b"", "text/csv", 400, "CSV table"),
        (b"a,b\n1,2\n", "text/csv", 400, "no column 'text'"),
        (b"PAR1", "application/vnd.apache.parquet", 415, "Parquet bodies are not taken"),
        (b"<x/>", "application/xml", 415, "not supported"),
        (b'{"inputs": ["x"]}', "application/json; charset=latin-1", 415, "UTF-8"),
    ],
)
def test_invocations_refuses_bodies_it_cannot_read(client, content, content_type, status,
                                                   fragment) -> None:
    response = client.post("/invocations", content=content, headers={"content-type": content_type})

    mlflow_error(response, status, fragment)


def test_invocations_limits_are_413_naming_the_row_and_the_limit(client) -> None:
    too_many = client.post("/invocations", json={"instances": ["a"] * 5})
    too_long = client.post("/invocations", json={"instances": ["ok", "y" * 50],
                                                 "params": {"truncate": False}})
    cut = client.post("/invocations", json={"instances": ["ok", "y" * 50]})
    too_big = client.post("/invocations", json={"instances": ["y" * 9000]})

    mlflow_error(too_many, 413, "5 texts", "serve.max_texts_per_request = 4")
    mlflow_error(too_long, 413, "row 1", "serve.max_text_chars = 40")
    assert cut.status_code == 200
    mlflow_error(too_big, 413, "serve.max_body_bytes = 8192")


# --- /health, /info, /metrics, docs, other routes ------------------------------------------


def test_health_info_and_metrics(client, sklearn_dir) -> None:
    client.post("/predict", json={"inputs": "count me"})

    assert client.get("/health").status_code == 200
    info = client.get("/info").json()
    assert info["model_name"] == "sentiment" and info["model_version"] is None
    assert info["model_path"] == str(sklearn_dir) and info["model_source"] == str(sklearn_dir)
    assert (info["kind"], info["backend"]) == ("sklearn", "sklearn")
    assert info["labels"] == ["negative", "neutral", "positive"]
    assert info["limits"] == {"max_texts_per_request": 4, "max_text_chars": 40,
                              "max_body_bytes": 8192, "max_concurrent_requests": 512}
    assert info["batching"]["threads"] == 1
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'te_request_count_total{route="/predict",status="200"}' in text
    assert 'te_request_count_total{route="/predict",status="422"}' in text
    for name in ("te_request_duration_bucket", "te_request_queue_duration_bucket",
                 "te_request_inference_duration_bucket", "te_batch_next_size_bucket",
                 "te_batch_next_tokens_bucket", "te_batch_inference_duration_bucket",
                 "te_model_calls_total", "te_queue_size"):
        assert name in text
    assert 'te_model_info{backend="sklearn",kind="sklearn",name="sentiment",version=""} 1.0' in text


def test_docs_describe_every_field_and_the_limits(client) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    for name in ("PredictRequest", "InvocationsRequest", "Prediction", "ErrorResponse",
                 "MlflowError", "InfoResponse", "Limits", "Batching", "DataframeSplit"):
        for field, spec in components[name]["properties"].items():
            assert spec.get("description") or "$ref" in spec, f"{name}.{field}"
    inputs = components["PredictRequest"]["properties"]["inputs"]
    assert "At most 4 texts" in inputs["description"] and "40 characters" in inputs["description"]
    assert {"type": "array", "maxItems": 4} .items() <= inputs["anyOf"][1].items()
    assert "serve.max_body_bytes" in schema["info"]["description"]
    predict = schema["paths"]["/predict"]["post"]
    assert {"200", "400", "413", "422", "429", "503"} <= set(predict["responses"])
    assert "x-queue-time" in predict["responses"]["200"]["headers"]
    invocations = schema["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(invocations) == {"application/json", "text/csv"}


def test_other_routes_answer_404_in_tei_shape_and_root_is_the_dashboard(client) -> None:
    tei_error(client.get("/nowhere"), 404, "validation")
    assert client.get("/").headers["content-type"].startswith("text/html")  # the dashboard
    assert client.post("/").status_code == 405  # TEI's POST / alias is not honoured


# --- start-up, readiness, overload ---------------------------------------------------------


def test_before_the_model_answers_health_and_inference_are_503() -> None:
    app = app_for(FakeProvider(FakeModel()))
    client = TestClient(app)  # no `with`: the lifespan (model loading) has not run

    tei_error(client.get("/health"), 503, "unhealthy")
    tei_error(client.post("/predict", json={"inputs": "x"}), 503, "unhealthy")
    response = client.post("/invocations", json={"inputs": ["x"]})
    assert response.status_code == 503
    assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_start_up_fails_loudly_when_the_model_cannot_load(tmp_path: Path) -> None:
    broken = FakeProvider(FakeModel(), load_error=ArtifactError("no model at /nowhere"))

    with pytest.raises(ArtifactError, match="no model at /nowhere"):
        with TestClient(app_for(broken)):
            pass
    with pytest.raises(ArtifactError, match="warm-up"):
        with TestClient(app_for(FakeProvider(FakeModel(nan=True)))):
            pass
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(ArtifactError, match="corrupt"):
        with TestClient(app_for(folder_provider(tmp_path))):
            pass


def test_a_model_failure_is_424_backend_and_the_service_goes_on() -> None:
    model = FakeModel()
    with TestClient(app_for(FakeProvider(model), max_wait_ms=0)) as client:
        model.nan = True
        tei_error(client.post("/predict", json={"inputs": "x"}), 424, "backend", "NaN")
        model.raw_scores = None  # type: ignore[assignment, method-assign]
        tei_error(client.post("/predict", json={"inputs": "x"}), 424, "backend",
                  "inference failed")
        assert client.get("/health").status_code == 200


def test_beyond_the_in_flight_limit_requests_get_429_at_once() -> None:
    model = FakeModel()
    app = app_for(FakeProvider(model), max_concurrent_requests=2, max_wait_ms=0)

    async def scenario(client):
        await client.get("/health")
        in_flight = app.state.service.in_flight
        model.gate.clear()
        held = [asyncio.ensure_future(client.post("/predict", json={"inputs": f"t{i}"}))
                for i in range(2)]
        await until(lambda: in_flight.count == 2)  # both admitted, held by the gate
        refused = await client.post("/predict", json={"inputs": "one more"})
        refused_mlflow = await client.post("/invocations", json={"inputs": ["one more"]})
        model.gate.set()
        return refused, refused_mlflow, [r.status_code for r in await asyncio.gather(*held)]

    refused, refused_mlflow, held = serve_async(app, scenario)

    tei_error(refused, 429, "overloaded", "serve.max_concurrent_requests", "2")
    mlflow_error(refused_mlflow, 429, "serve.max_concurrent_requests")
    assert held == [200, 200]


def test_concurrent_requests_to_a_transformer_share_model_calls(tiny_transformer_model) -> None:
    app = app_for(folder_provider(tiny_transformer_model), max_wait_ms=50, max_batch_requests=64)
    texts = [f"flight {i} was " + "late " * (i % 5) for i in range(24)]

    async def scenario(client):
        responses = await asyncio.gather(
            *(client.post("/predict", json={"inputs": t}) for t in texts)
        )
        metrics = (await client.get("/metrics")).text
        info = (await client.get("/info")).json()
        return responses, metrics, info

    responses, metrics, info = serve_async(app, scenario)

    assert [r.status_code for r in responses] == [200] * len(texts)
    calls = next(float(line.split()[-1]) for line in metrics.splitlines()
                 if line.startswith("te_model_calls_total"))
    assert 1 <= calls < len(texts)
    assert (info["kind"], info["backend"]) == ("transformers", "torch")
    expected = load_model(tiny_transformer_model).predict_proba(texts)
    labels = info["labels"]
    for response, row in zip(responses, expected, strict=True):
        got = {p["label"]: p["score"] for p in response.json()}
        assert got == pytest.approx(dict(zip(labels, row, strict=True)), abs=1e-5)
