"""Schemathesis runs over the service's OpenAPI schema, with the token: every answer as the
schema documents it (status, content type, headers, body), no 5xx, and the schema taking what
the server takes and refusing what it refuses."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from fake_youtube import API_KEY, FakeVideo, FakeYouTube, thread
from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.service_settings import ServiceSettings
from sentiment_pipeline.serving.app import create_app
from server_process import serving
from serving_fakes import folder_provider
from tiny_sklearn import save_tiny_model

TOKEN = "schemathesis-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VIDEO = "dQw4w9WgXcQ"  # the schema's example video, which the fake YouTube has
OPERATIONS = {"POST /predict", "POST /invocations", "GET /health", "GET /info", "GET /metrics",
              "POST /v1/analyze", "POST /v1/youtube/analyze"}
SERVE = {"max_texts_per_request": 8, "max_text_chars": 100, "max_body_bytes": 16_384,
         "max_wait_ms": 0}
INSIGHTS = {"max_comments": 10, "max_comments_limit": 20, "max_upload_bytes": 16_384}
# The response checks, the status checks and the two checks that the schema and the server
# agree on what is valid; "strict" stands for the content refusals no JSON Schema can express.
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance",
          "negative_data_rejection", "positive_data_acceptance_strict", "missing_required_header",
          "unsupported_method", "allow_header_conformance", "ignored_auth"]
# A limit (texts, characters, bytes, comments) refuses with 413: a rejection of data beyond the
# schema's maxItems or maximum; and a valid request can be too large in bytes or characters,
# which a JSON Schema cannot bound (413, as the routes document).
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "413", "429"]


def content_refusal(case: Any, response: Any) -> bool:
    """A refusal of what a JSON Schema cannot describe: a file's content (bad_file), whether a
    text is a YouTube link (bad_video), the JSON in the upload's aspects field, a CSV table, and
    a split row's values by column."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if body.get("error_type") in ("bad_file", "bad_video"):
        return True
    # The upload's `aspects` field is a string of JSON: its contentSchema is an annotation.
    if str(body.get("error", "")).startswith("form field aspects is not a list of aspects"):
        return True
    if case.path != "/invocations" or response.status_code != 400:
        return False
    if case.media_type == "text/csv":
        return True
    split = isinstance(case.body, dict) and "dataframe_split" in case.body
    return split and body["message"].startswith(("dataframe_split.data[", "row "))


@schemathesis.check
def positive_data_acceptance_strict(ctx: Any, response: Any, case: Any) -> bool | None:
    """positive_data_acceptance, but for the content refusals (content_refusal)."""
    if content_refusal(case, response):
        return None
    return positive_data_acceptance(ctx, response, case)


def run_config(examples: int, seed: int = 17) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": seed,  # the same cases on every run; another seed looks elsewhere
        "workers": 1,
        "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
        "generation": {"max-examples": examples, "mode": "all"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            **{name: {"enabled": True} for name in CHECKS},
            # Disabled: run by positive_data_acceptance_strict, with these statuses.
            "positive_data_acceptance": {"enabled": False, "expected-statuses": ACCEPTED},
            "negative_data_rejection": {"enabled": True, "expected-statuses": REJECTED},
        },
    })


@dataclass
class RunResult:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_schemathesis(schema: Any) -> RunResult:
    """Every phase but the stateful one; the cases per operation, the statuses, the failures."""
    result = RunResult()
    for event in from_schema(schema).execute():
        recorder = getattr(event, "recorder", None)
        if recorder is not None:
            record(result, recorder)
        if isinstance(event, events.NonFatalError | events.FatalError):
            result.errors.append(str(getattr(event, "value", getattr(event, "exception", ""))))
    return result


def record(result: RunResult, recorder: Any) -> None:
    label = recorder.label  # the operation, also for its cases of undeclared methods
    for case_id in recorder.cases:
        result.cases[label] += 1
        interaction = recorder.interactions.get(case_id)
        response = interaction.response if interaction is not None else None
        if response is not None:
            result.statuses[(label, response.status_code)] += 1
        for check in recorder.checks.get(case_id, []):
            if check.status == Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                answer = (f"{response.status_code} {response.content[:300]!r}"
                          if response is not None else "no answer")
                result.failures.append(f"{label}: {failure.title}: {failure.message[:300]}; "
                                       f"answered {answer} to "
                                       f"{check.failure_info.code_sample[:600]}")


def check_run(result: RunResult, at_least: int) -> None:
    assert not result.errors, result.errors
    assert not result.failures, "\n".join(sorted(set(result.failures)))
    assert set(result.cases) == OPERATIONS, result.cases
    assert sum(result.cases.values()) >= at_least, result.cases
    ok = {label for (label, status), _ in result.statuses.items() if status == 200}
    assert ok == OPERATIONS, result.statuses  # each operation reached its answer, not only 4xx
    assert not [key for key in result.statuses if key[1] >= 500], result.statuses


@pytest.fixture(scope="module")
def youtube() -> Iterator[FakeYouTube]:
    threads = [thread(f"c{i}", text) for i, text in enumerate(["great", "awful", "fine"])]
    with FakeYouTube(videos={VIDEO: FakeVideo(threads=threads)}) as fake:
        yield fake


def settings(youtube: FakeYouTube) -> ServiceSettings:
    return ServiceSettings(api_token=TOKEN, youtube_api_key=API_KEY,
                           youtube_base_url=youtube.url, youtube_burst=100_000,
                           youtube_rate_per_minute=100_000)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("schemathesis") / "baseline"
    save_tiny_model(folder)
    return folder


@pytest.fixture(scope="module")
def app(model_dir: Path, youtube: FakeYouTube):
    return create_app(ServeConfig(**SERVE), folder_provider(model_dir),
                      insights=InsightsConfig(**INSIGHTS), settings=settings(youtube))


def test_the_schema_has_every_operation_and_the_token(app) -> None:
    with TestClient(app) as client:
        schema = client.get("/openapi.json", headers=AUTH).json()
    found = {f"{method.upper()} {path}" for path, item in schema["paths"].items()
             for method in item}
    assert found == OPERATIONS
    guarded = {f"{method.upper()} {path}" for path, item in schema["paths"].items()
               for method, operation in item.items() if operation.get("security")}
    assert guarded == OPERATIONS - {"GET /health"}


def test_a_small_run_finds_nothing(app) -> None:
    """The fast path's run: a few cases of each phase per operation."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=run_config(15),
                                            headers=AUTH)

    check_run(run_schemathesis(schema), at_least=300)


@pytest.mark.slow
def test_a_thousand_cases_against_a_served_process_find_nothing(model_dir, youtube, tmp_path
                                                                ) -> None:
    """`sentiment-pipeline serve` with the token, its limits from params.yaml, the fake YouTube:
    at least 1,000 generated cases over every operation."""
    (tmp_path / "params.yaml").write_text(
        "serve:\n" + "".join(f"  {key}: {value}\n" for key, value in SERVE.items())
        + "insights:\n" + "".join(f"  {key}: {value}\n" for key, value in INSIGHTS.items()))
    env = {"SENTIMENT_PIPELINE_API_TOKEN": TOKEN, "SENTIMENT_PIPELINE_TRUST_ARTIFACTS": "true",
           "SENTIMENT_PIPELINE_YOUTUBE_API_KEY": API_KEY,
           "SENTIMENT_PIPELINE_YOUTUBE_BASE_URL": youtube.url,
           "SENTIMENT_PIPELINE_YOUTUBE_BURST": "100000",
           "SENTIMENT_PIPELINE_YOUTUBE_RATE_PER_MINUTE": "100000"}

    with serving(["--model", str(model_dir)], cwd=tmp_path, env=env) as served:
        schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json",
                                               config=run_config(120), headers=AUTH)
        result = run_schemathesis(schema)

    print("cases per operation:", dict(result.cases))
    check_run(result, at_least=1_000)
