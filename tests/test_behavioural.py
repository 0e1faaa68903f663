"""The behavioural (CheckList-style) suite: generated cases and how they are scored."""

from __future__ import annotations

from collections import Counter

from sentiment_pipeline.evaluation import behavioural
from synthetic import LABELS


def _case_sensitive_keyword_model(texts: list[str]) -> list[str]:
    return ["negative" if "bad" in t else "positive" for t in texts]


def test_suite_is_deterministic_and_covers_every_test_type():
    cases = behavioural.build_suite(LABELS)
    assert cases == behavioural.build_suite(LABELS)
    counts = Counter(c.test for c in cases)
    assert counts == {"negation": 24, "invariance": 18, "intensifier": 12}
    assert behavioural.Case(
        "negation", "the flight was not bad", forbidden="negative"
    ) in cases
    variants = {c.variant for c in cases if c.test == "invariance"}
    assert variants == {"mention", "url", "upper_case"}
    assert any(c.text.startswith("@") for c in cases)
    assert any("https://" in c.text for c in cases)
    # an invariance case differs from its reference only by the perturbation
    for case in cases:
        if case.test == "invariance":
            assert case.text != case.reference
            assert case.reference.lower() in case.text.lower()


def test_negation_cases_only_for_labels_the_data_has():
    cases = behavioural.build_suite(["negative", "neutral"])
    forbidden = {c.forbidden for c in cases if c.test == "negation"}
    assert forbidden == {"negative"}
    assert not any(c.test == "negation" for c in behavioural.build_suite(["a", "b"]))


def test_pass_rates_and_failures():
    cases = behavioural.build_suite(LABELS)
    result = behavioural.run_suite(_case_sensitive_keyword_model, cases)
    tests = result["tests"]
    # "not bad" is called negative (6 failures), "not good"/"not great" positive (12 failures)
    assert tests["negation"]["n_passed"] == 6
    assert tests["negation"]["pass_rate"] == 6 / 24
    assert tests["negation"]["n_failures"] == 18
    assert len(tests["negation"]["failures"]) == behavioural.MAX_FAILURES
    failure = tests["negation"]["failures"][0]
    assert failure["expected"].startswith("not ")
    assert failure["predicted"] == failure["expected"].removeprefix("not ")
    # upper-casing "the service was bad" hides the keyword: the only invariance failure
    assert tests["invariance"]["failures"] == [
        {
            "text": "THE SERVICE WAS BAD",
            "reference": "the service was bad",
            "expected": "negative",
            "predicted": "positive",
            "variant": "upper_case",
        }
    ]
    assert tests["intensifier"]["pass_rate"] == 1.0
    assert result["n_cases"] == 54
    assert result["pass_rate"] == (6 + 17 + 12) / 54


def test_every_text_is_predicted_in_one_call():
    calls = []

    def predict(texts):
        calls.append(len(texts))
        return ["neutral"] * len(texts)

    result = behavioural.run_suite(predict, behavioural.build_suite(LABELS))
    assert len(calls) == 1
    assert result["pass_rate"] == 1.0  # neutral is never a forbidden or flipped label
