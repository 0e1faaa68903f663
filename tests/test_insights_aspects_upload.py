"""Aspects asked for by a multipart upload to /v1/analyze: the `aspects` (a JSON string) and
`discover_aspects` form fields, read like the JSON request's; 422 naming a malformed field."""

from __future__ import annotations

from pathlib import Path

import pytest

from aspect_fakes import FakePairModel
from test_insights_aspects_api import COMMENTS, error, started
from tiny_sklearn import save_tiny_model

AUDIO = '[{"name": "audio", "terms": ["sound", "mic"]}]'


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("upload-aspects") / "baseline"
    save_tiny_model(folder)
    return folder


def upload(client, **fields: str):
    data = "text\n" + "\n".join(f'"{text}"' for text in COMMENTS) + "\n"
    return client.post("/v1/analyze", files={"file": ("comments.csv", data.encode(), "text/csv")},
                       data=fields)


def test_an_upload_asks_for_aspects_and_discoveries_in_form_fields(model_dir):
    model = FakePairModel()
    with started(model_dir, model, terms_min_count=1) as client:
        response = upload(client, aspects=AUDIO, discover_aspects="1", charts="true")
    assert response.status_code == 200, response.text
    body = response.json()
    audio, found = body["aspects"]
    assert (audio["name"], audio["terms"], audio["count"]) == ("audio", ["audio", "sound", "mic"],
                                                               3)
    assert found["discovered"] and len(body["discovered_aspects"]) == 1
    assert len(model.calls) == 1 and "aspects" in body["charts"]


def test_empty_aspect_fields_ask_for_nothing(model_dir):
    model = FakePairModel()
    with started(model_dir, model) as client:
        response = upload(client, aspects=" ", discover_aspects="")
    assert response.status_code == 200, response.text
    assert response.json()["aspects"] == [] and model.calls == []


@pytest.mark.parametrize(("fields", "says"), [
    ({"aspects": "audio"}, "form field aspects"),
    ({"aspects": '{"name": "audio"}'}, "form field aspects"),
    ({"aspects": '[{"name": " "}]'}, "form field aspects"),
    ({"aspects": '[{"name": "audio", "synonyms": ["sound"]}]'}, "0.synonyms"),
    ({"discover_aspects": "two"}, "form field discover_aspects is 'two'"),
    ({"discover_aspects": "-1"}, "form field discover_aspects"),
    ({"discover_aspects": "1.5"}, "form field discover_aspects"),
])
def test_a_malformed_aspect_field_is_422_naming_it(model_dir, fields, says):
    with started(model_dir, FakePairModel()) as client:
        error(upload(client, **fields), 422, "validation", says)


def test_upload_aspects_without_a_model_are_409_and_over_the_limit_413(model_dir):
    with started(model_dir, None, max_aspects=1, max_discover_aspects=2) as client:
        error(upload(client, aspects=AUDIO), 409, "no_aspect_model", "no aspect model is loaded")
        error(upload(client, discover_aspects="3"), 413, "too_large")
        error(upload(client, discover_aspects="9" * 5000), 413, "too_large")
        assert upload(client).status_code == 200
