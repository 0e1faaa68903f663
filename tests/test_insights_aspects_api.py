"""Aspects through /v1/analyze and /v1/youtube/analyze: the answer with a fake aspect model on
the app's state, 409 without one, 413 over the limits, 422 for a malformed aspect."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aspect_fakes import FakePairModel
from fake_youtube import API_KEY, FakeVideo, FakeYouTube, thread
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.insights.youtube import client_from_settings
from sentiment_pipeline.service_settings import ServiceSettings, get_service_settings
from sentiment_pipeline.serving.app import create_app
from sentiment_pipeline.serving.insights_routes import get_youtube
from serving_fakes import folder_provider
from tiny_sklearn import save_tiny_model

VIDEO = "dQw4w9WgXcQ"
AUDIO = {"name": "audio", "terms": ["sound", "mic"]}
COMMENTS = ["great video but the sound is awful", "love the audio", "the mic <b>hum</b>",
            "nothing to see"]


@pytest.fixture(scope="module")
def sklearn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("aspects") / "baseline"
    save_tiny_model(folder)
    return folder


@contextmanager
def started(sklearn_dir: Path, aspect_model: FakePairModel | None, **insights):
    app = create_app(ServeConfig(max_wait_ms=0), folder_provider(sklearn_dir),
                     insights=InsightsConfig(language=None, **insights),
                     settings=ServiceSettings(api_token=None, cors_origins=[]))
    app.dependency_overrides[get_youtube] = lambda: client_from_settings(
        app.state.settings, backoff=0.01, timeout=2.0)
    with TestClient(app) as client:
        # The serving engineer's lifespan loads it; the routes read it from here.
        app.state.aspect_model = aspect_model
        yield client


@pytest.fixture
def client(sklearn_dir):
    model = FakePairModel()
    with started(sklearn_dir, model, max_aspects=2, max_aspect_mentions=5,
                 max_discover_aspects=3, terms_min_count=1) as client:
        client.model = model
        yield client


def error(response, status: int, kind: str, *fragments: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_type"] == kind, body
    for fragment in fragments:
        assert fragment in body["error"]


def test_the_answer_holds_each_aspect_read_by_the_aspect_model_in_one_call(client):
    response = client.post("/v1/analyze", json={
        "comments": COMMENTS, "aspects": [AUDIO, {"name": "video"}], "discover_aspects": 1,
        "charts": True,
    })
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(client.model.calls) == 1
    audio, video, found = body["aspects"]
    assert (audio["name"], audio["count"], found["discovered"]) == ("audio", 3, True)
    assert {r["label"]: r["count"] for r in audio["breakdown"]} == {
        "negative": 1, "neutral": 1, "positive": 1}
    assert video["net"]["value"] == 1.0
    [example] = audio["examples"]["neutral"]
    assert example["text"][example["start"]:example["end"]] == "mic"
    assert body["discovered_aspects"] == [{"term": found["name"], "count": found["count"]}]
    assert set(body["charts"]) == {"breakdown", "trend", "terms", "aspects"}


def test_a_plain_request_answers_as_before_with_two_empty_lists(client):
    body = client.post("/v1/analyze", json={"comments": COMMENTS, "charts": True}).json()
    assert body["aspects"] == [] and body["discovered_aspects"] == []
    assert set(body["charts"]) == {"breakdown", "trend", "terms"}
    assert client.model.calls == []


@pytest.mark.parametrize(("asked", "says"), [
    ({"aspects": [AUDIO, {"name": "a"}, {"name": "b"}]}, "3 aspects asked; at most 2"),
    ({"aspects": [{"name": "the"}]}, "at most 5 mentions"),
    ({"discover_aspects": 4}, "discover_aspects must be between 0 and 3"),
])
def test_over_the_limits_is_413(client, asked, says):
    response = client.post("/v1/analyze", json={"comments": [*COMMENTS] * 2, **asked})
    error(response, 413, "too_large", says)
    assert "params.yaml" not in response.json()["error"]


@pytest.mark.parametrize("aspect", [{"name": " "}, {"name": "audio", "terms": ["x" * 61]},
                                    {"name": "audio", "synonyms": []}, {"terms": ["sound"]}])
def test_a_malformed_aspect_is_422(client, aspect):
    response = client.post("/v1/analyze", json={"comments": COMMENTS, "aspects": [aspect]})
    error(response, 422, "validation", "aspects")


def test_aspects_without_an_aspect_model_are_409_and_plain_requests_still_work(sklearn_dir):
    with started(sklearn_dir, None) as client:
        response = client.post("/v1/analyze", json={"comments": COMMENTS, "aspects": [AUDIO]})
        error(response, 409, "no_aspect_model", "no aspect model is loaded")
        response = client.post("/v1/analyze", json={"comments": COMMENTS, "discover_aspects": 2})
        error(response, 409, "no_aspect_model")
        assert client.post("/v1/analyze", json={"comments": COMMENTS}).status_code == 200


def test_the_schema_documents_the_fields_and_the_409(client):
    schema = client.get("/openapi.json").json()
    fields = schema["components"]["schemas"]["AnalyzeRequest"]["properties"]
    assert {"aspects", "discover_aspects"} <= set(fields)
    youtube = schema["components"]["schemas"]["YouTubeAnalyzeRequest"]["properties"]
    assert {"aspects", "discover_aspects"} <= set(youtube)
    for path in ("/v1/analyze", "/v1/youtube/analyze"):
        assert "no_aspect_model" in schema["paths"][path]["post"]["responses"]["409"][
            "description"]


# --- YouTube -----------------------------------------------------------------------------------


@pytest.fixture
def youtube(monkeypatch):
    threads = [thread(f"c{i}", text, likes=i, published=f"2024-05-{10 + i:02d}T12:00:00Z")
               for i, text in enumerate(COMMENTS)]
    with FakeYouTube(videos={VIDEO: FakeVideo(title="A song", threads=threads)},
                     page_size=3) as fake:
        monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_API_KEY", API_KEY)
        monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_BASE_URL", fake.url)
        get_service_settings.cache_clear()
        yield fake
    get_service_settings.cache_clear()


def test_a_videos_comments_are_read_for_aspects(sklearn_dir, youtube):
    model = FakePairModel()
    with started(sklearn_dir, model) as client:
        response = client.post("/v1/youtube/analyze",
                               json={"video": VIDEO, "aspects": [AUDIO]})
    assert response.status_code == 200, response.text
    [audio] = response.json()["aspects"]
    assert audio["count"] == 3 and len(model.calls) == 1
    assert all(e["url"].startswith("https://www.youtube.com/watch?v=")
               for rows in audio["examples"].values() for e in rows)


def test_youtube_aspects_without_a_model_or_over_the_limit_are_refused_before_any_fetch(
    sklearn_dir, youtube
):
    with started(sklearn_dir, None, max_aspects=1) as client:
        error(client.post("/v1/youtube/analyze", json={"video": VIDEO, "aspects": [AUDIO]}),
              409, "no_aspect_model")
        error(client.post("/v1/youtube/analyze",
                          json={"video": VIDEO, "aspects": [AUDIO, {"name": "video"}]}),
              413, "too_large")
    assert youtube.requests == []
