"""What DVC reruns after an edit: exactly the stages that read what was edited, nothing else.

The project's dvc.yaml, params.yaml and src/ are copied into a new git + DVC repository; every
stage's outputs are stand-in files recorded with `dvc commit`, so `dvc status` then answers
"what would `dvc repro` rerun" without training anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGE = Path("src/sentiment_pipeline")
# Run on every `dvc repro` by design (they read a data source DVC cannot name), so status always
# lists them.
ALWAYS = {"source", "prepare_aspects"}
DATA_STAGES = {"ingest", "validate", "prepare"}

pytestmark = pytest.mark.slow  # git, dvc and a copy of the package per test


def run(*cmd: str, cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def outputs(stage: dict) -> list[str]:
    entries = [*stage.get("outs", []), *stage.get("metrics", [])]
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose dvc.lock records the project as it is, every output a stand-in."""
    root = tmp_path_factory.mktemp("dvc-status")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for stage in stages.values():
        for out in outputs(stage):
            path = root / out
            if path.suffix:  # a file (.json, .parquet); otherwise a model or report folder
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}\n")
            else:
                path.mkdir(parents=True, exist_ok=True)
                (path / "model.json").write_text("{}\n")
    run("git", "init", "-q", cwd=root)
    run("dvc", "init", "-q", cwd=root)
    run("dvc", "commit", "--force", "--quiet", cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-qm", "init", cwd=root)
    assert changed(root) == set()
    return root


@pytest.fixture
def repo(committed: Path, tmp_path: Path) -> Path:
    """A fresh copy of the committed repository for one edit."""
    copy = tmp_path / "repo"
    shutil.copytree(committed, copy, symlinks=True)
    return copy


def changed(root: Path) -> set[str]:
    """The stages `dvc status` says `dvc repro` would rerun (the always-run source left out)."""
    status = json.loads(run("dvc", "status", "--json", cwd=root) or "{}")
    return {name.rpartition(":")[2] for name in status} - ALWAYS


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def set_param(root: Path, key: str, value: object) -> None:
    tree = yaml.safe_load((root / "params.yaml").read_text())
    *parents, last = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))


def describe_first_field(path: Path) -> None:
    """Change the first field description of a configuration module (as a reword would)."""
    text = path.read_text()
    match = re.search(r'description="', text)
    assert match, path
    path.write_text(text[: match.end()] + "Reworded. " + text[match.end():])


@pytest.mark.parametrize(
    "module", ["config/serve.py", "config/insights.py", "service_settings.py"]
)
def test_editing_what_only_the_service_reads_reruns_nothing(repo: Path, module: str) -> None:
    describe_first_field(repo / PACKAGE / module)

    assert changed(repo) == set()


def test_editing_serve_and_insights_values_reruns_nothing(repo: Path) -> None:
    set_param(repo, "serve.max_wait_ms", 5.0)
    set_param(repo, "insights.top_n", 7)

    assert changed(repo) == set()


def test_editing_a_training_value_reruns_only_its_stage(repo: Path) -> None:
    set_param(repo, "train.lightgbm.n_trials", 3)

    assert changed(repo) == {"train_lightgbm"}


@pytest.mark.parametrize(
    ("module", "stages"),
    [
        ("config/lightgbm.py", {"train_lightgbm"}),
        # The two fine-tuning stages share FineTuneConfig; the pair baseline reuses the TF-IDF
        # model; both registrations and both exports share their code.
        ("config/distilbert.py", {"train_distilbert", "train_aspects"}),
        ("config/tfidf.py", {"train_baseline", "train_lightgbm", "train_aspects",
                             "train_aspect_baseline"}),
        ("config/register.py", {"register_model", "register_aspects"}),
        ("config/data.py", DATA_STAGES),
        ("machine.py", {"train_lightgbm", "export_onnx", "export_aspects_onnx"}),
    ],
)
def test_editing_a_section_model_reruns_the_stages_that_read_it(
    repo: Path, module: str, stages: set[str]
) -> None:
    if module.startswith("config/"):
        describe_first_field(repo / PACKAGE / module)
    else:
        edit(repo / PACKAGE / module, '"""Facts about', '"""Facts (reworded) about')

    assert changed(repo) == stages
