"""The /v1 audience-insights routes, the token, CORS, the YouTube rate limit and the dashboard's
files, through the ASGI client with the tiny scikit-learn model (and the fake YouTube API)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import get_args

import httpx
import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from fake_youtube import API_KEY, FakeVideo, FakeYouTube, thread
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.insights.comments import ErrorKind
from sentiment_pipeline.insights.result import AnalysisResult
from sentiment_pipeline.insights.youtube import client_from_settings
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.service_settings import ServiceSettings, get_service_settings
from sentiment_pipeline.serving import server
from sentiment_pipeline.serving.app import create_app
from sentiment_pipeline.serving.dashboard import CSP, PACKAGE
from sentiment_pipeline.serving.errors import INSIGHTS_STATUS
from sentiment_pipeline.serving.insights_routes import get_youtube
from sentiment_pipeline.serving.ratelimit import RateLimiter, TokenBucket
from serving_fakes import FakeModel, FakeProvider, folder_provider, resolved_folder
from tiny_sklearn import save_tiny_model

VIDEO = "dQw4w9WgXcQ"
TOKEN = "s3cret-token"
ALLOWED = "https://allowed.example"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def sklearn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("insights") / "baseline"
    save_tiny_model(folder)
    return folder


def app_for(model_dir: Path, settings: ServiceSettings | None = None, **insights):
    return create_app(ServeConfig(max_wait_ms=0), folder_provider(model_dir),
                      insights=InsightsConfig(**insights), settings=settings or ServiceSettings())


@pytest.fixture(scope="module")
def client(sklearn_dir: Path):
    app = app_for(sklearn_dir, ServiceSettings(api_token=None, cors_origins=[]),
                  max_upload_bytes=4096, max_comments_limit=50, max_comments=20)
    with TestClient(app) as started:
        yield started


def error(response: httpx.Response, status: int, error_type: str, *fragments: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type, body
    for fragment in fragments:
        assert fragment in body["error"]
    return body["error"]


def airline_csv(rows: int = 12) -> bytes:
    """A file like the airline tweets: day-month-year times no parser guesses, likes."""
    lines = ["tweet_id,text,tweet_created,retweets"]
    texts = ["great crew, thanks!", "lost my bag again", "flight was ok", XSS]
    for i in range(rows):
        text = texts[i % len(texts)]
        lines.append(f"{i},\"{text}\",{24 + i % 3:02d}-02-2015 11.{i:02d},{i}")
    return ("\n".join(lines) + "\n").encode()


# --- POST /v1/analyze ----------------------------------------------------------------------


def test_json_comments_get_the_models_predictions_and_the_analysis(client, sklearn_dir):
    comments = ["thanks, great crew", {"text": "lost my bag", "likes": 3, "id": "c-2",
                                       "published_at": "2024-05-01T12:00:00Z", "author": "ann"},
                {"text": "delayed again", "published_at": 1714567200}]

    response = client.post("/v1/analyze", json={"comments": comments, "charts": True})

    assert response.status_code == 200, response.text
    body = response.json()
    model = load_model(sklearn_dir, trust=True)
    texts = ["thanks, great crew", "lost my bag", "delayed again"]
    proba = model.predict_proba(texts)
    assert body["model"] == {"name": "sentiment", "version": None, "kind": "sklearn",
                             "backend": "sklearn"}
    assert body["source"] == {"kind": "json"} and body["labels"] == model.labels
    assert body["counts"]["comments"] == 3 and body["counts"]["with_time"] == 2
    rows = body["comments"]
    assert [row["text"] for row in rows] == texts
    assert [row["id"] for row in rows] == ["1", "c-2", "3"]
    assert rows[1]["author"] == "ann" and rows[1]["likes"] == 3
    assert rows[2]["published_at"].startswith("2024-05-01T12:40:00")
    for row, expected in zip(rows, proba, strict=True):
        assert [row["scores"][label] for label in model.labels] == pytest.approx(expected, abs=1e-5)
        assert row["label"] == model.labels[expected.argmax()]
    assert set(body["charts"]) == {"breakdown", "trend", "terms"}
    assert all("<svg" in svg for svg in body["charts"].values())


def test_without_charts_the_answer_has_none(client):
    body = client.post("/v1/analyze", json={"comments": ["ok", "fine"]}).json()

    assert "charts" not in body
    assert body["counts"]["comments"] == 2


def test_a_file_upload_with_a_time_format_gives_the_real_days(client):
    response = client.post(
        "/v1/analyze",
        files={"file": ("tweets.csv", airline_csv(), "text/csv")},
        data={"time_column": "tweet_created", "time_format": "%d-%m-%Y %H.%M",
              "likes_column": "retweets", "charts": "true"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == {"kind": "file", "file": "tweets.csv", "rows": 12}
    assert body["counts"]["comments"] == 12 and body["counts"]["unparsed_times"] == 0
    assert body["trend"]["period"] == "hour" or body["trend"]["period"] == "day"
    starts = {bucket["start"][:10] for bucket in body["trend"]["buckets"]}
    assert {"2015-02-24", "2015-02-26"} <= starts
    assert [row["likes"] for row in body["comments"]] == list(range(12))
    assert body["comments"][3]["text"] == XSS
    assert set(body["charts"]) == {"breakdown", "trend", "terms"}


def test_the_analysis_goes_through_the_services_batched_model_calls(client):
    def counted(name: str) -> float:
        text = client.get("/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name))

    calls = counted("te_model_calls_total")
    answered = counted('te_request_count_total{route="/v1/analyze",status="200"}')

    assert client.post("/v1/analyze", json={"comments": ["a", "b"]}).status_code == 200

    assert counted("te_model_calls_total") == calls + 1
    assert counted('te_request_count_total{route="/v1/analyze",status="200"}') == answered + 1


def test_an_upload_over_max_upload_bytes_is_413_naming_the_setting(client):
    response = client.post("/v1/analyze", files={"file": ("big.csv", airline_csv(200))})

    error(response, 413, "too_large", "insights.max_upload_bytes = 4096")


def test_more_comments_than_max_comments_limit_is_413(client, caplog):
    # Finding 7 of issue 17: a browser user was told to edit the server's params.yaml.
    caplog.set_level(logging.INFO, logger="sentiment_pipeline.serving.errors")
    response = client.post("/v1/analyze", json={"comments": ["x"] * 51})

    message = error(response, 413, "too_large", "51", "send at most 50 comments")
    assert "params.yaml" not in message and "insights." not in message
    upload = client.post("/v1/analyze", files={"file": ("c.csv", b"text\n" + b"x\n" * 51)})
    assert "params.yaml" not in error(upload, 413, "too_large", "c.csv", "at most 50")
    # the operator finds the setting in the server's log
    assert "insights.max_comments_limit in params.yaml" in caplog.text


def test_a_missing_text_column_is_422_naming_the_columns(client):
    response = client.post("/v1/analyze", files={"file": ("tweets.csv", airline_csv())},
                           data={"text_column": "body"})

    error(response, 422, "bad_file", "'body'", "tweets.csv", "tweet_created")


@pytest.mark.parametrize(
    ("part", "data", "fragment"),
    [
        ("upload", {"text_column": "text"}, "no file in the field `file`"),
        ("file", {"colour": "red"}, "unknown form fields ['colour']"),
        ("file", {"charts": "maybe"}, "charts is 'maybe'"),
    ],
)
def test_a_malformed_upload_is_422(client, part, data, fragment):
    files = {part: ("t.csv", b"text\nok\n", "text/csv")}

    response = client.post("/v1/analyze", files=files, data=data)

    assert response.status_code == 422, response.text
    assert fragment in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b"{not json", "not valid JSON"), (b'{"comments": []}', "comments"),
     (b'{"comments": [{"txt": "x"}]}', "comments.0"), (b'{"texts": ["x"]}', "comments"),
     (b'{"comments": [{"text": "x", "likes": -1}]}', "likes")],
)
def test_a_malformed_json_request_is_422(client, body, fragment):
    response = client.post("/v1/analyze", content=body,
                           headers={"content-type": "application/json"})

    error(response, 422, "validation", fragment)


def test_the_routes_are_documented_with_their_bodies(client):
    schema = client.get("/openapi.json").json()

    analyze = schema["paths"]["/v1/analyze"]["post"]
    assert set(analyze["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "YouTubeAnalyzeRequest" in schema["components"]["schemas"]
    assert {"413", "422"} <= set(analyze["responses"])
    youtube = schema["paths"]["/v1/youtube/analyze"]["post"]["responses"]
    assert {"404", "422", "429", "502", "503"} <= set(youtube)
    assert "/" not in schema["paths"] and "/static/{name}" not in schema["paths"]


def component(schema: dict, name: str) -> dict:
    """The OpenAPI document's schema `name` as a JSON Schema that can reach every component."""
    return {"$ref": f"#/components/schemas/{name}", "components": schema["components"]}


@pytest.mark.parametrize("charts", [False, True])
def test_the_analysis_result_model_is_the_documented_answer_and_what_is_sent(client, charts):
    schema = client.get("/openapi.json").json()
    for path in ("/v1/analyze", "/v1/youtube/analyze"):
        ok = schema["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"] == {"$ref": "#/components/schemas/AnalysisResult"}, path
    comments = ["great crew, thanks", {"text": "lost my bag", "likes": 3, "author": "ann",
                                       "published_at": "2024-05-01T12:00:00Z"}, XSS]

    response = client.post("/v1/analyze", json={"comments": comments, "charts": charts})

    assert response.status_code == 200, response.text
    body = response.json()
    validator = jsonschema_rs.validator_for(component(schema, "AnalysisResult"))
    validator.validate(body)
    assert not validator.is_valid({key: value for key, value in body.items() if key != "trend"})
    assert not validator.is_valid({**body, "surprise": 1})
    assert ("charts" in body) is charts
    # The model is exactly what the route sends: the same bytes back from the parsed answer.
    assert AnalysisResult.model_validate(body).as_json().encode() == response.content


def test_every_error_kind_has_its_status_and_is_documented(client):
    kinds = set(get_args(ErrorKind))
    assert set(INSIGHTS_STATUS) == kinds
    assert all(400 <= status < 600 for status in INSIGHTS_STATUS.values())
    schema = client.get("/openapi.json").json()
    error_type = schema["components"]["schemas"]["ErrorResponse"]["properties"]["error_type"]
    assert kinds | {"validation"} <= {value for option in error_type["anyOf"]
                                      for value in option["enum"]}
    documented = set()
    for path in ("/v1/analyze", "/v1/youtube/analyze"):
        for status, answer in schema["paths"][path]["post"]["responses"].items():
            if status != "200":
                ref, narrowed = answer["content"]["application/json"]["schema"]["allOf"]
                assert ref == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)
                sent = narrowed["properties"]["error_type"]["enum"]
                documented |= {(kind, int(status)) for kind in sent}
    # bad_request is the analyze command's (max_comments out of range); the server says 422.
    assert {(kind, INSIGHTS_STATUS[kind]) for kind in kinds - {"bad_request"}} <= documented


# --- POST /v1/youtube/analyze ----------------------------------------------------------------


@pytest.fixture
def youtube():
    threads = [thread(f"c{i}", text, likes=i, published=f"2024-05-{10 + i:02d}T12:00:00Z")
               for i, text in enumerate(["great video", "terrible sound", "ok I guess", XSS,
                                         "love it", "boring", "fine"])]
    videos = {VIDEO: FakeVideo(title="A song", channel="Rick", threads=threads),
              "disabled000": FakeVideo(comments_disabled=True)}
    with FakeYouTube(videos=videos, page_size=3) as fake:
        yield fake


@pytest.fixture
def youtube_env(youtube, monkeypatch):
    """The server's settings pointing at the fake API, as an operator would set them."""
    monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_API_KEY", API_KEY)
    monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_BASE_URL", youtube.url)
    monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_BURST", "50")
    get_service_settings.cache_clear()
    yield youtube
    get_service_settings.cache_clear()


@pytest.fixture
def yt_client(sklearn_dir, youtube_env):
    app = create_app(ServeConfig(max_wait_ms=0), folder_provider(sklearn_dir),
                     insights=InsightsConfig(max_comments=5, max_comments_limit=6))
    # The settings' client, with short back-off so the retry cases stay fast.
    app.dependency_overrides[get_youtube] = lambda: client_from_settings(
        app.state.settings, backoff=0.01, timeout=2.0)
    with TestClient(app) as started:
        yield started


def test_a_videos_comments_are_fetched_and_analysed(yt_client, youtube_env):
    response = yt_client.post(
        "/v1/youtube/analyze",
        json={"video": f"https://youtu.be/{VIDEO}?t=42", "max_comments": 4, "order": "relevance",
              "charts": True},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"]["kind"] == "youtube"
    assert body["source"]["video"]["title"] == "A song"
    assert body["counts"]["comments"] == 4  # max_comments is exact
    assert [row["text"] for row in body["comments"]] == ["fine", "boring", "love it", XSS]
    assert set(body["charts"]) == {"breakdown", "trend", "terms"}
    assert {params["order"] for params in youtube_env.calls("commentThreads")} == {"relevance"}


def test_the_default_number_and_order_come_from_insights_config(yt_client, youtube_env):
    body = yt_client.post("/v1/youtube/analyze", json={"video": VIDEO}).json()

    assert body["counts"]["comments"] == 5  # insights.max_comments
    assert {params["order"] for params in youtube_env.calls("commentThreads")} == {"time"}


@pytest.mark.parametrize(
    ("video", "fail", "status", "reason", "fragment"),
    [
        ("https://example.com/watch?v=nope", None, 422, "bad_video", "example.com"),
        ("https://www.youtube.com/watch?v=AAAAAAAAAAA", None, 404, "video_not_found",
         "AAAAAAAAAAA"),
        ("disabled000", None, 422, "comments_disabled", "disabled"),
        (VIDEO, ("commentThreads", 403, "quotaExceeded", 1), 503, "youtube_quota", "quota"),
        (VIDEO, ("videos", 500, None, 3), 503, "youtube_unavailable", "500"),
        (VIDEO, ("videos", 400, "keyInvalid", 1), 502, "youtube_key", "key"),
    ],
)
def test_each_youtube_failure_has_its_status(yt_client, youtube_env, video, fail, status,
                                             reason, fragment):
    if fail is not None:
        resource, code, why, times = fail
        youtube_env.fail(resource, code, why, times=times)

    response = yt_client.post("/v1/youtube/analyze", json={"video": video})

    message = error(response, status, reason)
    assert fragment.lower() in message.lower()
    assert API_KEY not in response.text
    if reason == "youtube_quota":
        assert int(response.headers["retry-after"]) >= 1
    else:
        assert "retry-after" not in response.headers


def test_a_wrong_server_key_is_502(sklearn_dir, youtube_env, monkeypatch):
    monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_API_KEY", "wrong-key")
    get_service_settings.cache_clear()
    with TestClient(app_for(sklearn_dir, get_service_settings())) as client:
        response = client.post("/v1/youtube/analyze", json={"video": VIDEO})

    error(response, 502, "youtube_key")
    assert "wrong-key" not in response.text


def test_youtube_unreachable_is_502(sklearn_dir, monkeypatch):
    monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_API_KEY", API_KEY)
    monkeypatch.setenv("SENTIMENT_PIPELINE_YOUTUBE_BASE_URL", "http://127.0.0.1:9/youtube/v3")
    get_service_settings.cache_clear()
    app = app_for(sklearn_dir, get_service_settings())
    app.dependency_overrides[get_youtube] = lambda: client_from_settings(
        app.state.settings, backoff=0.0, timeout=1.0)
    with TestClient(app) as client:
        response = client.post("/v1/youtube/analyze", json={"video": VIDEO})
    get_service_settings.cache_clear()

    error(response, 502, "youtube_unreachable")


def test_no_key_on_the_server_is_503_not_configured(sklearn_dir):
    settings = ServiceSettings().model_copy(update={"youtube_api_key": None})
    with TestClient(app_for(sklearn_dir, settings)) as client:
        response = client.post("/v1/youtube/analyze", json={"video": VIDEO})

    error(response, 503, "youtube_not_configured", "SENTIMENT_PIPELINE_YOUTUBE_API_KEY")


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [({"video": VIDEO, "max_comments": 7}, 413, "ask for at most 6"),
     ({"video": VIDEO, "max_comments": 0}, 422, "max_comments"),
     ({"video": VIDEO, "order": "random"}, 422, "order"),
     ({"url": VIDEO}, 422, "video")],
)
def test_a_bad_youtube_request_is_refused_before_any_fetch(yt_client, youtube_env, body,
                                                           status, fragment):
    response = yt_client.post("/v1/youtube/analyze", json=body)

    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]
    assert youtube_env.requests == []


# --- the rate limit ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_bucket_starts_full_spends_one_per_take_and_says_when_the_next_comes():
    clock = Clock()
    bucket = TokenBucket(rate_per_s=0.5, size=2, clock=clock)

    assert [bucket.take(), bucket.take()] == [0.0, 0.0]
    assert bucket.take() == pytest.approx(2.0)  # one token every 2 s
    clock.now += 1.5
    assert bucket.take() == pytest.approx(0.5)  # a refused take spends nothing
    clock.now += 0.5
    assert bucket.take() == 0.0
    clock.now += 3600
    assert [bucket.take(), bucket.take()] == [0.0, 0.0]  # never more than `size`
    assert bucket.take() > 0


def test_a_clock_stepping_back_refills_nothing():
    clock = Clock()
    bucket = TokenBucket(rate_per_s=1.0, size=1, clock=clock)
    bucket.take()

    clock.now -= 100

    assert bucket.take() == pytest.approx(1.0)


def test_a_token_bucket_refuses_nonsense():
    with pytest.raises(ValueError, match="rate_per_s > 0"):
        TokenBucket(rate_per_s=0, size=1)


def test_the_limiter_keeps_one_bucket_per_client_and_forgets_full_ones():
    clock = Clock()
    limiter = RateLimiter(rate_per_minute=6, burst=1, clock=clock, max_clients=2)

    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(10.0)
    assert limiter.take("b") == 0.0  # another client, its own bucket
    clock.now += 10
    assert limiter.take("c") == 0.0  # 3 clients > 2: a and b have refilled and are dropped
    assert len(limiter) == 1
    assert limiter.take("c") == pytest.approx(10.0)


class Peer:
    """The app, seen from another address once `host` is set (the scope's client)."""

    def __init__(self, app) -> None:
        self.app = app
        self.host: str | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self.host is not None:
            scope = {**scope, "client": (self.host, 40000)}
        await self.app(scope, receive, send)


def test_youtube_analyses_over_the_rate_are_429_with_retry_after(sklearn_dir, youtube_env):
    settings = get_service_settings().model_copy(update={"youtube_burst": 2,
                                                 "youtube_rate_per_minute": 1.0})
    app = app_for(sklearn_dir, settings, max_comments=2)
    app.state.youtube_limiter.clock = Clock()  # frozen: the wait is exactly one token's
    peer = Peer(app)
    with TestClient(peer) as client:
        refused_video = client.post("/v1/youtube/analyze", json={"video": "not a video"})
        answers = [client.post("/v1/youtube/analyze", json={"video": VIDEO}) for _ in range(3)]
        peer.host = "10.0.0.2"
        other = client.post("/v1/youtube/analyze", json={"video": VIDEO})

    assert refused_video.status_code == 422  # refused before a token is spent
    assert [r.status_code for r in answers] == [200, 200, 429]
    error(answers[2], 429, "rate_limited", "SENTIMENT_PIPELINE_YOUTUBE_RATE_PER_MINUTE")
    assert answers[2].headers["retry-after"] == "60"  # 1 a minute: the next token in 60 s
    assert other.status_code == 200  # another address has its own bucket
    assert len(youtube_env.calls("videos")) == 3


# --- the token -----------------------------------------------------------------------------


PROTECTED = [
    ("GET", "/info", None), ("GET", "/metrics", None), ("GET", "/docs", None),
    ("GET", "/openapi.json", None), ("GET", "/redoc", None),
    ("POST", "/predict", {"inputs": "great"}),
    ("POST", "/invocations", {"instances": ["great"]}),
    ("POST", "/v1/analyze", {"comments": ["great"]}),
    ("POST", "/v1/youtube/analyze", {"video": "not a video"}),
    ("GET", "/no-such-route", None),
]
OPEN = [("GET", "/health"), ("GET", "/"), ("GET", "/static/app.js"), ("GET", "/static/app.css")]


@pytest.fixture(scope="module")
def locked(sklearn_dir):
    settings = ServiceSettings(api_token=TOKEN, cors_origins=[ALLOWED])
    with TestClient(app_for(sklearn_dir, settings)) as started:
        yield started


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_every_route_needs_the_token_when_one_is_set(locked, method, path, body):
    missing = locked.request(method, path, json=body)
    wrong = locked.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
    basic = locked.request(method, path, json=body, headers={"Authorization": f"Basic {TOKEN}"})
    right = locked.request(method, path, json=body,
                           headers={"Authorization": f"bearer {TOKEN}"})

    for refused in (missing, wrong, basic):
        assert refused.status_code == 401, (path, refused.text)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        body_keys = set(refused.json())
        assert body_keys in ({"error", "error_type"}, {"error_code", "message"})
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert "SENTIMENT_PIPELINE_API_TOKEN" in missing.text and TOKEN not in wrong.text
    if path == "/invocations":
        assert missing.json()["error_code"] == "UNAUTHENTICATED"
    else:
        assert missing.json()["error_type"] == "unauthorized"
    assert right.status_code != 401
    if path != "/no-such-route" and path != "/v1/youtube/analyze":
        assert right.status_code == 200, right.text


@pytest.mark.parametrize(("method", "path"), OPEN)
def test_health_and_the_dashboards_files_need_no_token(locked, method, path):
    assert locked.request(method, path).status_code == 200


def test_without_a_token_setting_nothing_asks_for_one(client):
    assert client.get("/info").status_code == 200
    assert client.get("/metrics").status_code == 200


# --- CORS ----------------------------------------------------------------------------------


def test_only_a_configured_origin_gets_cors_headers(locked):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    allowed = locked.get("/info", headers={**auth, "Origin": ALLOWED})
    other = locked.get("/info", headers={**auth, "Origin": "https://evil.example"})
    refused = locked.get("/info", headers={"Origin": ALLOWED})

    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-origin" not in other.headers
    assert other.status_code == 200  # CORS is the browser's rule; the server still answers
    # A 401 carries the header too, so the page can read it and ask for the token.
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ALLOWED


def test_a_preflight_needs_no_token_and_allows_the_authorization_header(locked):
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}

    allowed = locked.options("/v1/youtube/analyze", headers={**preflight, "Origin": ALLOWED})
    other = locked.options("/v1/youtube/analyze",
                           headers={**preflight, "Origin": "https://evil.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert {"authorization", "content-type"} <= {
        h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")}
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_no_cors_origins_no_cors_headers(client):
    response = client.get("/info", headers={"Origin": ALLOWED})

    assert "access-control-allow-origin" not in response.headers


# --- the dashboard's files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/", "text/html; charset=utf-8"), ("/static/app.js", "text/javascript; charset=utf-8"),
     ("/static/app.css", "text/css; charset=utf-8")],
)
def test_the_dashboard_is_served_with_its_types_and_a_strict_csp(client, path, content_type):
    response = client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-security-policy"] == (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'") == CSP
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["nope.js", "..%2F..%2Fpyproject.toml", "__init__.py"])
def test_only_the_dashboards_files_are_served(client, name):
    assert client.get(f"/static/{name}").status_code == 404


def static_text(name: str) -> str:
    from importlib.resources import files

    return files(PACKAGE).joinpath("static", name).read_text(encoding="utf-8")


def test_the_dashboard_inserts_no_markup_and_loads_nothing_from_elsewhere():
    from importlib.resources import files

    page, style = static_text("index.html"), static_text("app.css")
    names = sorted(p.name for p in files(PACKAGE).joinpath("static").iterdir()
                   if p.name.endswith(".js"))
    assert {"app.js", "aspects.js", "csv.js"} <= set(names)
    # Every script of the folder is one the page loads, and none is left out of the checks.
    assert re.findall(r'<script src="/static/([\w.]+)"', page) == ["csv.js", "aspects.js", "app.js"]
    script = "\n".join(static_text(name) for name in names)

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "localStorage"):
        assert sink not in script, sink
    assert not re.search(r"https?://(?!www\.youtube\.com/watch)", page + script + style)
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script
    assert " style=" not in page and "<style" not in page  # no inline style
    assert "sessionStorage" in script


# --- the worker factory carries the insights config -----------------------------------------


def test_the_launch_spec_carries_the_insights_config(sklearn_dir, tmp_path, monkeypatch):
    resolved = resolved_folder(sklearn_dir, name="baseline", trusted=True)
    launch = server.Launch.of(resolved, ServeConfig(max_wait_ms=0), model_name="m",
                              paths=ProjectPaths.at(tmp_path), threads=1,
                              insights=InsightsConfig(max_upload_bytes=2048))
    monkeypatch.setenv(server.LAUNCH_ENV, launch.model_dump_json())

    with TestClient(server.app_from_environment()) as started:
        response = started.post("/v1/analyze", files={"file": ("t.csv", airline_csv(100))})

    error(response, 413, "too_large", "insights.max_upload_bytes = 2048")



def test_analyses_have_their_own_in_flight_limit_and_leave_predict_alone():
    model = FakeModel()
    app = create_app(ServeConfig(max_concurrent_requests=1, max_wait_ms=0), FakeProvider(model),
                     settings=ServiceSettings(api_token=None, cors_origins=[]))

    async def scenario(client):
        await client.get("/health")
        model.gate.clear()
        held = asyncio.ensure_future(client.post("/v1/analyze", json={"comments": ["slow"]}))
        await asyncio.sleep(0.2)
        refused = await client.post("/v1/analyze", json={"comments": ["one more"]})
        predict = asyncio.ensure_future(client.post("/predict", json={"inputs": "still admitted"}))
        await asyncio.sleep(0.2)
        model.gate.set()
        return refused, (await held).status_code, (await predict).status_code

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await scenario(client)

    refused, held, predict = asyncio.run(asyncio.wait_for(main(), 30))

    error(refused, 429, "overloaded", "1 analyses in flight", "serve.max_concurrent_requests")
    assert (held, predict) == (200, 200)
