"""Property-based run over the service's OpenAPI schema (schemathesis, bounded): no 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from serving_fakes import app_for, folder_provider
from tiny_sklearn import save_tiny_model

EXAMPLES = 50  # per operation and generation mode


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("schemathesis") / "baseline"
    save_tiny_model(folder)
    app = app_for(folder_provider(folder), max_texts_per_request=8, max_text_chars=100,
                  max_body_bytes=16_384, max_wait_ms=0)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(api_schema) -> dict[str, object]:
    found = (result.ok() for result in api_schema.get_all_operations())
    return {f"{op.method.upper()} {op.path}": op for op in found}


def test_the_schema_has_every_operation(api_schema) -> None:
    assert set(operations(api_schema)) == {
        "POST /predict", "POST /invocations", "GET /health", "GET /info", "GET /metrics",
        "POST /v1/analyze", "POST /v1/youtube/analyze",
    }


@pytest.mark.parametrize(
    ("operation", "mode"),
    [
        ("POST /predict", GenerationMode.POSITIVE),
        ("POST /predict", GenerationMode.NEGATIVE),
        ("POST /invocations", GenerationMode.POSITIVE),
        ("POST /invocations", GenerationMode.NEGATIVE),
        ("POST /v1/analyze", GenerationMode.POSITIVE),
        ("POST /v1/analyze", GenerationMode.NEGATIVE),
        # POST /v1/youtube/analyze needs YouTube (tests/test_insights_api.py, the fake API).
        # GETs without parameters: nothing to get wrong, so positive only
        ("GET /health", GenerationMode.POSITIVE),
        ("GET /info", GenerationMode.POSITIVE),
        ("GET /metrics", GenerationMode.POSITIVE),
    ],
)
def test_no_generated_request_makes_the_service_fail(api_schema, operation, mode) -> None:
    statuses: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operations(api_schema)[operation].as_strategy(generation_mode=mode))
    def no_server_error(case) -> None:
        response = case.call_and_validate(checks=[not_a_server_error])
        statuses.append(response.status_code)

    no_server_error()

    assert statuses and max(statuses) < 500
    if operation.startswith("POST") and mode is GenerationMode.POSITIVE:
        assert 200 in statuses  # the run reached the model, not only the validation
