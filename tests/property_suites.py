"""Hypothesis profiles sized per property suite, and the tally of how each generated input ended."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable

from hypothesis import event, settings

PROFILE_VARIABLE = "SENTIMENT_PIPELINE_HYPOTHESIS_PROFILE"
SUITE_PREFIX = "test_properties_"  # tests/test_properties_*.py: one property suite each

# Inputs each property suite generates per run (the sum of max_examples over its properties):
# `fast` is `python -m pytest`, `ci` is .ci/run, `deep` is the long run of docs/testing.md.
# The profiles set no max_examples of their own, so other hypothesis tests keep theirs.
INPUTS_PER_SUITE = {"fast": 250, "ci": 2_000, "deep": 10_000}
# A property test may take the pytest timeout plus this much per input of its suite's budget:
# inputs take 10-60 ms on 2 idle cores, so a test past it is hung, not slow.
SECONDS_PER_INPUT = 0.1

# how generated inputs ended, per suite file: "clean result" or "clear error (DataError)"
TALLY: defaultdict[str, Counter[str]] = defaultdict(Counter)


def load_profile() -> None:
    """Register the profiles and load the one SENTIMENT_PIPELINE_HYPOTHESIS_PROFILE names.

    `fast` and `ci` explore the same inputs on every run, so a run cannot fail by chance;
    `deep` draws new ones each run (`--hypothesis-seed=N` repeats one) to find what they miss.
    """
    for name in INPUTS_PER_SUITE:
        settings.register_profile(
            name, derandomize=name != "deep", deadline=None, print_blob=True
        )
    name = os.environ.get(PROFILE_VARIABLE, "fast")
    if name not in INPUTS_PER_SUITE:
        raise ValueError(
            f"{PROFILE_VARIABLE}={name!r} is not a profile of the property suites; "
            f"expected one of {sorted(INPUTS_PER_SUITE)}"
        )
    settings.load_profile(name)


def profile_name() -> str:
    """The loaded profile (from the variable, or pytest's --hypothesis-profile)."""
    # --hypothesis-verbosity loads a copy of the profile named '<profile>-with-...'
    name = settings.get_current_profile_name().partition("-with-")[0]
    if name not in INPUTS_PER_SUITE:
        raise ValueError(
            f"hypothesis profile {name!r} does not size the property suites; "
            f"load one of {sorted(INPUTS_PER_SUITE)}"
        )
    return name


def inputs_per_suite() -> int:
    return INPUTS_PER_SUITE[profile_name()]


def examples_per_test(properties: int) -> int:
    """max_examples of each of a suite's `properties` tests: the profile's inputs per suite."""
    return -(-inputs_per_suite() // properties)


def timeout_s(base_s: float) -> float:
    """The time limit of a property test: the pytest timeout plus its suite's budget."""
    return base_s + SECONDS_PER_INPUT * inputs_per_suite()


def outcome(error: Exception | None = None, naming: Iterable[str] = ()) -> None:
    """Record how one generated input ended (None: a clean result), for hypothesis'
    statistics and the run's summary; an error must be clear: a message naming what it is
    about (one of `naming`: the file, the key, the override...), not a traceback."""
    if error is not None:
        message, naming = str(error), list(naming)
        assert message.strip(), f"{type(error).__name__} without a message"
        assert "Traceback" not in message, f"a traceback in the message: {message}"
        assert any(name in message for name in naming), (
            f"the {type(error).__name__} names none of {naming}: {message}"
        )
    ending = "clean result" if error is None else f"clear error ({type(error).__name__})"
    event(f"outcome: {ending}")
    suite = os.environ["PYTEST_CURRENT_TEST"].partition("::")[0]
    TALLY[suite][ending] += 1


def summary() -> list[str]:
    """One line per suite: inputs generated, clean results, clear errors by class."""
    lines = []
    for suite, endings in sorted(TALLY.items()):
        clean = endings["clean result"]
        errors = sorted(((n, e) for e, n in endings.items() if e != "clean result"), reverse=True)
        kinds = ", ".join(f"{n} {e.removeprefix('clear error (')[:-1]}" for n, e in errors)
        lines.append(
            f"{suite}: {sum(endings.values())} inputs, {clean} clean results, "
            f"{sum(n for n, _ in errors)} clear errors ({kinds or 'none'})"
        )
    return lines
