"""CheckList-style behavioural tests: the sentiment suite from templates, and the one runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sentiment_pipeline.models.artifacts.pairs import Pair

# A model's input: a text, or a (text, aspect) pair for a pair model.
Input = str | Pair
TEST_TYPES: tuple[str, ...] = ("negation", "invariance", "intensifier")
MAX_FAILURES = 5

_SUBJECTS = ["the flight", "the crew", "the service", "the food", "my seat", "the check-in"]
# (negated phrase, the label it must not get)
_NEGATIONS = [
    ("was not bad", "negative"),
    ("was not terrible", "negative"),
    ("was not good", "positive"),
    ("was not great", "positive"),
]
_ADJECTIVES = ["good", "great", "bad", "terrible", "late", "fine"]
_INTENSIFIERS = ["really very", "extremely", "incredibly"]
_PERTURBATIONS: dict[str, Callable[[str], str]] = {
    "mention": lambda text: f"@airline {text}",
    "url": lambda text: f"{text} https://t.co/x1y2z3",
    "upper_case": str.upper,
}


@dataclass(frozen=True)
class Case:
    """One behavioural check of `text` (one of): `reference` is the input whose prediction must
    be kept; `forbidden` is a label it must not get; `expected` is the label it must get."""

    test: str
    text: Input
    reference: Input | None = None
    forbidden: str | None = None
    variant: str = ""
    expected: str | None = None


def build_suite(labels: Sequence[str]) -> list[Case]:
    """The deterministic suite; negation cases only for the labels the data has."""
    cases: list[Case] = []
    for subject in _SUBJECTS:
        for phrase, forbidden in _NEGATIONS:
            if forbidden in labels:
                cases.append(Case("negation", f"{subject} {phrase}", forbidden=forbidden))
    for i, subject in enumerate(_SUBJECTS):
        plain = f"{subject} was {_ADJECTIVES[i % len(_ADJECTIVES)]}"
        for variant, perturb in _PERTURBATIONS.items():
            cases.append(Case("invariance", perturb(plain), reference=plain, variant=variant))
    for i, subject in enumerate(_SUBJECTS):
        for j, adjective in enumerate(("good", "bad")):
            intensifier = _INTENSIFIERS[(i + j) % len(_INTENSIFIERS)]
            plain = f"{subject} was {adjective}"
            cases.append(
                Case(
                    "intensifier",
                    f"{subject} was {intensifier} {adjective}",
                    reference=plain,
                    variant=intensifier,
                )
            )
    return cases


def run_suite(
    predict: Callable[[list[Any]], list[str]],
    cases: Sequence[Case],
    test_types: Sequence[str] = TEST_TYPES,
) -> dict[str, Any]:
    """Pass rate and failing examples per test type (`test_types`), plus the overall pass rate.

    `predict` maps inputs (texts, or pairs for a pair model) to label names; every input is
    predicted in one call. The rates inform: no rate fails a stage.
    """
    texts = sorted({c.text for c in cases} | {c.reference for c in cases if c.reference})
    predicted = dict(zip(texts, predict(texts), strict=True))
    tests: dict[str, Any] = {}
    n_passed_total = 0
    for test in test_types:
        selected = [c for c in cases if c.test == test]
        failures = []
        for case in selected:
            got = predicted[case.text]
            if case.forbidden is not None:
                ok = got != case.forbidden
                expected = f"not {case.forbidden}"
            elif case.expected is not None:
                expected = case.expected
                ok = got == expected
            else:
                expected = predicted[case.reference]
                ok = got == expected
            if not ok:
                failures.append(
                    {"text": case.text, "reference": case.reference, "expected": expected,
                     "predicted": got, "variant": case.variant}
                )
        n_passed = len(selected) - len(failures)
        n_passed_total += n_passed
        tests[test] = {
            "n_cases": len(selected),
            "n_passed": n_passed,
            "pass_rate": n_passed / len(selected) if selected else None,
            "failures": failures[:MAX_FAILURES],
            "n_failures": len(failures),
        }
    return {
        "n_cases": len(cases),
        "pass_rate": n_passed_total / len(cases) if cases else None,
        "tests": tests,
    }
