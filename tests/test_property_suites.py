"""The property suites' machinery (tests/property_suites.py and its hooks in conftest.py), run
on toy suites in a pytest subprocess: the profile sizes a suite, the summary counts its inputs,
and a hung hypothesis test ends the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

TOY_SUITE = '''
from hypothesis import given, settings, strategies as st
from property_suites import examples_per_test, outcome
from sentiment_pipeline.errors import DataError

EXAMPLES = examples_per_test(properties=2)


@settings(max_examples=EXAMPLES)
@given(st.integers())
def test_always_clean(n):
    outcome()


@settings(max_examples=EXAMPLES)
@given(st.integers())
def test_always_an_error(n):
    outcome(DataError(f"toy.csv holds {n}"), naming=["toy.csv"])
'''

HANGING = '''
import time
from hypothesis import given, strategies as st


@given(st.integers(0, 10))
def test_hangs_on_some_inputs(n):
    if n > 3:
        time.sleep(3600)
'''


def run_pytest(folder: Path, profile: str, *args: str, timeout_s: float = 120):
    """pytest on `folder` with the repo's conftest as a plugin (its hooks, profiles, fixtures)."""
    env = {**os.environ, "SENTIMENT_PIPELINE_HYPOTHESIS_PROFILE": profile,
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
         "--rootdir", str(folder), *args, str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=timeout_s,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("profile", "inputs"), [("fast", 250), ("ci", 2000)])
def test_a_suite_generates_its_profiles_inputs_and_the_summary_counts_them(
    tmp_path: Path, profile: str, inputs: int
) -> None:
    (tmp_path / "test_properties_toy.py").write_text(TOY_SUITE)

    run = run_pytest(tmp_path, profile, "-q")

    assert run.returncode == 0, run.stdout + run.stderr
    assert f"property suites, hypothesis profile {profile!r}" in run.stdout
    half = inputs // 2
    assert (
        f"test_properties_toy.py: {inputs} inputs, {half} clean results, {half} clear errors "
        f"({half} DataError)"
    ) in run.stdout


@pytest.mark.slow
def test_an_error_that_names_nothing_given_fails_the_suite(tmp_path: Path) -> None:
    (tmp_path / "test_properties_toy.py").write_text(
        TOY_SUITE.replace('naming=["toy.csv"]', 'naming=["other.csv"]')
    )

    run = run_pytest(tmp_path, "fast", "-q")

    assert run.returncode == 1
    assert "the DataError names none of ['other.csv']: toy.csv holds 0" in run.stdout


@pytest.mark.slow
def test_an_unknown_profile_is_refused_naming_the_variable(tmp_path: Path) -> None:
    (tmp_path / "test_properties_toy.py").write_text(TOY_SUITE)

    run = run_pytest(tmp_path, "huge", "-q")

    assert run.returncode != 0
    assert (
        "SENTIMENT_PIPELINE_HYPOTHESIS_PROFILE='huge' is not a profile of the property suites; "
        "expected one of ['ci', 'deep', 'fast']"
    ) in run.stdout + run.stderr


@pytest.mark.slow
def test_a_hung_hypothesis_test_ends_the_run_with_its_stack(tmp_path: Path) -> None:
    # Before: pytest-timeout's signal failed the test inside hypothesis, which replayed the hung
    # input to shrink it, with no time limit left: the run never ended.
    (tmp_path / "test_hang.py").write_text(HANGING)

    run = run_pytest(tmp_path, "fast", "-q", "--timeout=3", timeout_s=60)

    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "+ Timeout +" in output and "test_hangs_on_some_inputs" in output
