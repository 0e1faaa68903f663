"""The OpenAPI document is the contract: each answer is documented with its status and body,
the request schemas take what the server takes, /health is JSON, HEAD works wherever GET does,
and OPTIONS without the token gives away no route."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.insights.comments import NOT_BLANK, not_blank
from sentiment_pipeline.service_settings import ServiceSettings
from sentiment_pipeline.serving.app import create_app
from sentiment_pipeline.serving.schemas import TEXTS_PER_INPUT, predict_request_model
from serving_fakes import FakeModel, FakeProvider, folder_provider
from tiny_sklearn import save_tiny_model

TOKEN = "openapi-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "https://allowed.example"
VIDEO = "dQw4w9WgXcQ"
JSON = "application/json"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    """The tiny model with the token set, no YouTube key, CORS for one origin, small limits."""
    folder = tmp_path_factory.mktemp("openapi") / "baseline"
    save_tiny_model(folder)
    app = create_app(
        ServeConfig(max_texts_per_request=8, max_text_chars=100, max_wait_ms=0),
        folder_provider(folder),
        insights=InsightsConfig(max_comments=10, max_comments_limit=20),
        settings=ServiceSettings(api_token=TOKEN, cors_origins=[ORIGIN], youtube_api_key=None),
    )
    with TestClient(app) as started:
        yield started


@pytest.fixture(scope="module")
def openapi(client) -> dict[str, Any]:
    return client.get("/openapi.json", headers=AUTH).json()


def resolvable(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, able to reach the document's components."""
    return {**schema, "components": openapi["components"]}


def answer_schema(openapi: dict[str, Any], method: str, path: str, status: int) -> dict:
    responses = openapi["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} does not document {status}"
    return resolvable(openapi, responses[str(status)]["content"][JSON]["schema"])


def request_schema(openapi: dict[str, Any], path: str) -> dict[str, Any]:
    body = openapi["paths"][path]["post"]["requestBody"]["content"][JSON]["schema"]
    return resolvable(openapi, body)


# --- every error answer as documented --------------------------------------------------------

MULTIPART_BROKEN = {"content": b"--x\r\n-0.99--x--\r\n",
                    "headers": {**AUTH, "content-type": "multipart/form-data; boundary=x"}}
ERRORS = [
    ("POST", "/predict", {"json": {"inputs": []}}, 400, "empty"),
    ("POST", "/predict", {"json": {"inputs": [["a"]] * 9}}, 413, "validation"),
    ("POST", "/predict", {"json": {"inputs": [["a", "b"]]}}, 422, "validation"),
    ("POST", "/invocations", {"json": {"instances": []}}, 400, None),
    ("POST", "/invocations", {"content": b"x", "headers": {**AUTH, "content-type": "text/xml"}},
     415, None),
    ("POST", "/v1/analyze", {"files": {"file": ("c.csv", b"body\nhello\n")}}, 422, "bad_file"),
    ("POST", "/v1/analyze", {"json": {"comments": ["x"] * 21}}, 413, "too_large"),
    ("POST", "/v1/analyze", MULTIPART_BROKEN, 400, "validation"),
    ("POST", "/v1/youtube/analyze", {"json": {"video": "not a video"}}, 422, "bad_video"),
    ("POST", "/v1/youtube/analyze", {"json": {"video": VIDEO, "max_comments": 21}}, 413,
     "too_large"),
    ("POST", "/v1/youtube/analyze", {"json": {"video": VIDEO}}, 503, "youtube_not_configured"),
    ("GET", "/info", {"headers": {}}, 401, "unauthorized"),
    ("POST", "/invocations", {"json": {"instances": ["x"]}, "headers": {}}, 401, None),
]


@pytest.mark.parametrize(("method", "path", "request_", "status", "error_type"), ERRORS)
def test_each_error_answer_is_documented_with_its_status_and_type(
    client, openapi, method, path, request_, status, error_type
):
    request_ = {"headers": AUTH, **request_}  # "headers": {} sends no token

    response = client.request(method, path, **request_)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    body = response.json()
    if error_type is not None:
        assert body["error_type"] == error_type
    jsonschema_rs.validator_for(answer_schema(openapi, method, path, status)).validate(body)


def test_an_answer_with_another_routes_error_type_is_not_documented(openapi):
    too_large = answer_schema(openapi, "POST", "/v1/analyze", 413)
    not_found = {"error": "no such video", "error_type": "video_not_found"}

    assert not jsonschema_rs.validator_for(too_large).is_valid(not_found)
    assert jsonschema_rs.validator_for(answer_schema(
        openapi, "POST", "/v1/youtube/analyze", 404)).is_valid(not_found)


# --- the request schemas take what the server takes ------------------------------------------

REFUSED = [
    ("/v1/youtube/analyze", {"video": ""}),
    ("/v1/youtube/analyze", {"video": VIDEO, "charts": "true"}),
    ("/v1/youtube/analyze", {"video": VIDEO, "max_comments": "5"}),
    ("/v1/analyze", {"comments": [""]}),
    ("/v1/analyze", {"comments": ["  \u3000", "a real one"]}),
    ("/v1/analyze", {"comments": [{"text": "\t"}]}),
    ("/v1/analyze", {"comments": ["fine"], "charts": 0}),
    ("/v1/analyze", {"comments": [{"text": "fine", "likes": "3"}]}),
    ("/predict", {"inputs": [["a", "b"]]}),
    ("/predict", {"inputs": ["a", "b"]}),
    ("/predict", {"inputs": []}),
    ("/predict", {"inputs": "x", "truncate": 0}),
    ("/predict", {"inputs": "x", "truncate": 1}),
    ("/predict", {"inputs": "x", "raw_scores": "true"}),
    ("/invocations", {"dataframe_split": None, "dataframe_records": None, "instances": None,
                      "inputs": None}),
    ("/invocations", {"instances": ["a"], "inputs": ["b"]}),
    ("/invocations", {"instances": []}),
    ("/invocations", {"instances": ["a", None]}),
    ("/invocations", {"instances": ["a"], "params": {"truncate": 0}}),
    ("/invocations", {"dataframe_records": [{"a": "x", "b": "y"}]}),
    ("/invocations", {"inputs": {"a": ["x"], "b": ["y"]}}),
    ("/invocations", {"dataframe_split": {"columns": [], "data": [[]]}}),
]
ACCEPTED = [
    ("/v1/youtube/analyze", {"video": f"https://youtu.be/{VIDEO}", "max_comments": 5.0}),
    ("/v1/analyze", {"comments": ["fine", {"text": "ok", "likes": 4.0}]}),
    ("/predict", {"inputs": ""}),
    ("/predict", {"inputs": [["a"], ["b"]], "truncate": True, "raw_scores": False}),
    ("/invocations", {"dataframe_split": {"columns": ["id", "text"], "data": [[1, "x"]]}}),
    ("/invocations", {"dataframe_records": [{"only": "x"}]}),
    ("/invocations", {"inputs": {"text": ["x"], "id": [1]}, "params": None}),
]


@pytest.mark.parametrize(("path", "body"), REFUSED)
def test_what_the_server_refuses_the_schema_refuses(client, openapi, path, body):
    response = client.post(path, json=body, headers=AUTH)

    assert response.status_code in (400, 422), response.text
    assert not jsonschema_rs.validator_for(request_schema(openapi, path)).is_valid(body)


@pytest.mark.parametrize(("path", "body"), ACCEPTED)
def test_what_the_schema_takes_the_server_takes(client, openapi, path, body):
    jsonschema_rs.validator_for(request_schema(openapi, path)).validate(body)
    response = client.post(path, json=body, headers=AUTH)

    # The YouTube route gets as far as the missing key: the request itself was taken.
    expected = 503 if path == "/v1/youtube/analyze" else 200
    assert response.status_code == expected, response.text


def test_a_json_comment_with_a_lone_surrogate_is_analysed_as_a_files_is(client):
    """A lone surrogate escaped in JSON is a string to the schema; it was a 500 (pandas' Arrow
    strings cannot hold it)."""
    body = b'{"comments": ["broken \\ud800 text", "fine"]}'

    response = client.post("/v1/analyze", content=body,
                           headers={**AUTH, "content-type": JSON})

    assert response.status_code == 200, response.text
    assert len(response.json()["comments"]) == 2


@pytest.mark.parametrize("charts", ["1", "yes", "True", "0"])
def test_a_boolean_form_field_is_true_or_false(client, charts):
    response = client.post("/v1/analyze", headers=AUTH, data={"charts": charts},
                           files={"file": ("c.csv", b"text\nhello\n")})

    assert response.status_code == 422, response.text
    assert "send true or false" in response.json()["error"]


def test_the_schema_documents_the_limits_of_an_analysis(openapi):
    schemas = openapi["components"]["schemas"]
    assert schemas["AnalyzeRequest"]["properties"]["comments"]["maxItems"] == 20
    max_comments = schemas["YouTubeAnalyzeRequest"]["properties"]["max_comments"]["anyOf"]
    assert {"type": "integer", "minimum": 1, "maximum": 20}.items() <= max_comments[0].items()


# --- /health, HEAD and OPTIONS ---------------------------------------------------------------


def test_health_answers_the_documented_json(client, openapi):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == {"status": "ok"}
    jsonschema_rs.validator_for(answer_schema(openapi, "GET", "/health", 200)).validate(
        response.json())


def test_health_is_503_unhealthy_json_while_loading(openapi):
    loading = TestClient(create_app(ServeConfig(), FakeProvider(FakeModel())))  # no lifespan

    response = loading.get("/health")

    assert response.status_code == 503
    jsonschema_rs.validator_for(answer_schema(openapi, "GET", "/health", 503)).validate(
        response.json())


@pytest.mark.parametrize("path", ["/health", "/info", "/metrics", "/openapi.json", "/",
                                  "/static/app.js"])
def test_head_is_answered_wherever_get_is(client, path):
    get = client.get(path, headers=AUTH)
    head = client.head(path, headers=AUTH)

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if path != "/metrics":  # its counts change between the two requests
        assert head.headers["content-length"] == str(len(get.content))


def test_head_needs_the_token_where_get_does(client):
    refused = client.head("/info")

    assert refused.status_code == 401 and refused.content == b""
    assert client.head("/health").status_code == 200


KNOWN = ["/predict", "/info", "/metrics", "/health", "/v1/analyze", "/docs", "/"]
UNKNOWN = ["/nope", "/v1/secret", "/admin", "/static/nope.js", "/v2/analyze"]


def test_options_without_the_token_is_the_same_401_on_every_path(client):
    answers = {path: client.options(path) for path in KNOWN + UNKNOWN}

    assert {path: answer.status_code for path, answer in answers.items()} == dict.fromkeys(
        KNOWN + UNKNOWN, 401)
    assert len({answer.content for answer in answers.values()}) == 1
    assert not any("allow" in answer.headers for answer in answers.values())


def test_a_preflight_is_answered_alike_on_every_path(client):
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}

    answers = [client.options(path, headers=preflight) for path in KNOWN + UNKNOWN]

    assert {answer.status_code for answer in answers} == {200}
    assert {answer.headers["access-control-allow-origin"] for answer in answers} == {ORIGIN}


# --- the /predict shape follows the model ----------------------------------------------------


def test_the_predict_schema_follows_the_texts_per_input(openapi):
    def valid(texts_per_input: int) -> Any:
        schema = predict_request_model(texts_per_input, 4).model_json_schema()
        return jsonschema_rs.validator_for(schema).is_valid

    singles, pairs = valid(1), valid(2)
    for inputs in ("a", [["a"]], [["a"], ["b"]]):
        assert singles({"inputs": inputs}) and not pairs({"inputs": inputs})
    for inputs in (["a", "b"], [["a", "b"]], [["a", "b"], ["c", "d"]]):
        assert pairs({"inputs": inputs}) and not singles({"inputs": inputs})
    assert not singles({"inputs": [["a"]] * 5}) and not pairs({"inputs": []})
    served = openapi["components"]["schemas"]["PredictRequest"]["properties"]["inputs"]
    expected = predict_request_model(TEXTS_PER_INPUT, 8).model_json_schema()
    assert served["anyOf"] == expected["properties"]["inputs"]["anyOf"]


def test_not_blank_is_what_the_readers_keep():
    """The schema's pattern, under Python's and JSON Schema's (Rust) regex engines alike, is
    str.strip()'s notion of a blank text."""
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    others = "".join(chr(c) for c in range(sys.maxunicode + 1)
                     if not chr(c).isspace() and not 0xD800 <= c <= 0xDFFF)
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": NOT_BLANK}).is_valid

    assert all(re.search(NOT_BLANK, space) is None for space in spaces)
    assert not any(rust(space) for space in spaces) and not rust("".join(spaces))
    assert re.sub(NOT_BLANK, "", others) == ""
    assert all(rust(others[i:i + 1]) for i in range(0, len(others), 97))
    with pytest.raises(ValueError, match="blank"):
        not_blank("".join(spaces))
    assert not_blank(" x\ud800 ") == " x\ud800 "


def test_an_app_without_a_token_documents_none(tmp_path: Path):
    folder = tmp_path / "baseline"
    save_tiny_model(folder)
    app = create_app(ServeConfig(max_wait_ms=0), folder_provider(folder),
                     settings=ServiceSettings(api_token=None))
    with TestClient(app) as open_client:
        schema = open_client.get("/openapi.json").json()

    assert "securitySchemes" not in schema["components"]
    assert not any("401" in operation["responses"] for item in schema["paths"].values()
                   for operation in item.values())
