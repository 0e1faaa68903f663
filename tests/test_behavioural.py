"""The behavioural (CheckList-style) suite: generated cases and how they are scored."""

from __future__ import annotations

from collections import Counter

import pytest

from sentiment_pipeline.evaluation import behavioural
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.paths import ProjectPaths
from synthetic import LABELS
from tiny_sklearn import save_tiny_model


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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A TF-IDF + LogisticRegression trained on synthetic data, loaded as evaluation does."""
    paths = ProjectPaths.at(tmp_path_factory.mktemp("behavioural"))
    save_tiny_model(paths.baseline_model)
    return load_model(paths.baseline_model, expected_labels=LABELS, project=paths)


def test_a_trained_bag_of_words_model_on_the_suite(trained):
    cases = behavioural.build_suite(LABELS)
    result = behavioural.run_suite(trained.predict, cases)
    tests = result["tests"]
    # Minimum functionality: the synthetic data's cue words decide the class.
    assert trained.predict(["terrible", "flight", "great"]) == LABELS

    # TF-IDF lowercases, and the tokens the perturbations add ("airline", "https", "co",
    # "x1y2z3") and the intensifiers never occur in training: a bag of words cannot change its
    # answer, so invariance and intensifier cases all pass.
    vocabulary = trained.estimator["tfidf"].vocabulary_
    added = ["airline", "https", "co", "x1y2z3", "really", "very", "extremely", "incredibly"]
    assert not set(added) & set(vocabulary)
    assert tests["invariance"]["pass_rate"] == 1.0
    assert tests["intensifier"]["pass_rate"] == 1.0

    # "not" is an unseen token too, so the model answers as for the sentence without it: a
    # negation case fails exactly when that sentence gets the forbidden label.
    negations = [c for c in cases if c.test == "negation"]
    plain = trained.predict([c.text.replace("not ", "") for c in negations])
    must_fail = {c.text for c, got in zip(negations, plain, strict=True) if got == c.forbidden}
    assert "the crew was not terrible" in must_fail  # "terrible" is a negative cue word
    assert tests["negation"]["n_failures"] == len(must_fail)
    assert {f["text"] for f in tests["negation"]["failures"]} <= must_fail
    assert tests["negation"]["n_passed"] == len(negations) - len(must_fail)
    assert tests["negation"]["pass_rate"] < 1
    assert result["pass_rate"] == pytest.approx((len(cases) - len(must_fail)) / len(cases))
