"""The `python -m` seam every stage module uses: config, exit codes, --verbose tracebacks."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest

from sentiment_pipeline import runner
from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.errors import ConfigError, DataError
from sentiment_pipeline.paths import ProjectPaths


def failing_run(config: SplitConfig, paths: ProjectPaths) -> None:
    try:
        int("x")
    except ValueError as exc:
        raise DataError("the data is broken; rerun the prepare stage") from exc


def stage(run) -> runner.Stage:
    return runner.Stage("prepare", "split", SplitConfig, run)


@pytest.fixture
def quiet_setup(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record configure_logging calls instead of changing this process's library settings."""
    calls: list[bool] = []
    monkeypatch.setattr(runner, "configure_logging", calls.append)
    return calls


def test_main_runs_the_stage_on_its_section_of_params_yaml(
    project: ProjectPaths, quiet_setup: list[bool], caplog: pytest.LogCaptureFixture
) -> None:
    seen = []

    with caplog.at_level(logging.INFO, logger="sentiment_pipeline"):
        runner.main(stage(lambda config, paths: seen.append((config, paths)) or 7), argv=[])

    assert seen == [(SplitConfig(), project)]
    assert quiet_setup == [False]
    assert "prepare finished: 7" in caplog.text


@pytest.mark.parametrize("verbose", [False, True])
def test_a_pipeline_error_exits_with_its_code_and_the_traceback_only_when_verbose(
    project: ProjectPaths,
    quiet_setup: list[bool],
    caplog: pytest.LogCaptureFixture,
    verbose: bool,
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        runner.main(stage(failing_run), argv=["--verbose"] if verbose else [])

    assert exit_info.value.code == 1
    assert quiet_setup == [verbose]
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "prepare failed: the data is broken; rerun the prepare stage"
    assert (record.exc_info is not None) is verbose


def test_a_bad_params_yaml_exits_2(
    project: ProjectPaths, quiet_setup: list[bool], caplog: pytest.LogCaptureFixture
) -> None:
    (project.root / "params.yaml").write_text("split:\n  test_fraction: 1.2\n")

    with pytest.raises(SystemExit) as exit_info:
        runner.main(stage(failing_run), argv=[])

    assert exit_info.value.code == 2
    assert "split.test_fraction: got 1.2" in caplog.text  # the full key, as the whole tree says


def test_a_stage_validates_only_its_own_section(project: ProjectPaths) -> None:
    # DVC reruns a stage only when its section changes; a mistake elsewhere is not its business
    # (`sentiment-pipeline run` validates the whole file before any stage starts).
    (project.root / "params.yaml").write_text(
        "split:\n  seed: 7\nserve:\n  max_wait_ms: -1\nnot_a_section: 1\n"
    )
    assert stage(failing_run).read_config() == SplitConfig(seed=7)

    (project.root / "params.yaml").write_text("split: 3\n")
    with pytest.raises(ConfigError, match=r"split: got 3; expected a section"):
        stage(failing_run).read_config()
    (project.root / "params.yaml").write_text("split:\n  seed: .nan\n  test_fractoin: 0.1\n")
    with pytest.raises(ConfigError, match=r"split.test_fractoin: unknown key"):
        stage(failing_run).read_config()


def test_the_verbose_setting_turns_on_tracebacks(
    project: ProjectPaths, quiet_setup: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentiment_pipeline.settings import get_settings

    monkeypatch.setenv("SENTIMENT_PIPELINE_VERBOSE", "true")
    get_settings.cache_clear()

    with pytest.raises(SystemExit):
        runner.main(stage(failing_run), argv=[])

    assert quiet_setup == [True]


@pytest.mark.slow
def test_python_m_prints_one_line_or_the_cause_chain(project: ProjectPaths) -> None:
    (project.root / "broken.parquet").write_text("not parquet")
    (project.root / "params.yaml").write_text("data:\n  source: broken.parquet\n")
    stamped = subprocess.run([sys.executable, "-m", "sentiment_pipeline.data.source"],
                             cwd=project.root, capture_output=True, text=True, timeout=120)
    cmd = [sys.executable, "-m", "sentiment_pipeline.data.ingest"]

    quiet = subprocess.run(cmd, cwd=project.root, capture_output=True, text=True, timeout=120)
    loud = subprocess.run([*cmd, "-v"], cwd=project.root, capture_output=True, text=True,
                          timeout=120)

    # the stage module's own logger is named after it, not __main__, and logs at INFO
    assert stamped.returncode == 0, stamped.stderr
    assert "INFO    sentiment_pipeline.data.source: source broken.parquet changed" in stamped.stderr
    assert quiet.returncode == loud.returncode == 1
    assert "Traceback" not in quiet.stderr
    (line,) = [line for line in quiet.stderr.splitlines() if "ingest failed" in line]
    assert re.search(r"ERROR +sentiment_pipeline.runner: ingest failed: cannot read \S+/broken"
                     r"\.parquet as parquet: ", line)
    cause, effect = loud.stderr.split(
        "The above exception was the direct cause of the following exception:"
    )
    assert "Traceback" in cause and "sentiment_pipeline.errors.DataError: cannot read" in effect
